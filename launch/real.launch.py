"""ros2 launch robot_policy real.launch.py checkpoint:=/path [controller:=...] [output:=...]

A real arm: perception_node (camera) + policy_node + control_node, parameters from
config/real_graph.yaml (the file `robot-policy up` runs). The arm's ros2_control driver is
started separately (e.g. franka_ros2's or the UR driver's launch file) and must provide
/joint_states and the controller named by `controller`.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from robot_policy.graph.launch_support import graph_node


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "graph",
                default_value=PathJoinSubstitution(
                    [FindPackageShare("robot_policy"), "config", "real_graph.yaml"]
                ),
                description="graph parameter file",
            ),
            DeclareLaunchArgument("checkpoint", description="checkpoint trained for this cell"),
            DeclareLaunchArgument(
                "controller",
                default_value="joint_trajectory_controller",
                description="the arm's ros2_control controller",
            ),
            DeclareLaunchArgument(
                "output", default_value="joint_trajectory", description="joint_trajectory|commands"
            ),
            DeclareLaunchArgument("camera_source", default_value="0", description="OpenCV source"),
            DeclareLaunchArgument("use_sim_time", default_value="false"),
            graph_node(
                "perception_node",
                {"source": ParameterValue(LaunchConfiguration("camera_source"), value_type=str)},
            ),
            graph_node("policy_node", {"checkpoint": LaunchConfiguration("checkpoint")}),
            graph_node(
                "control_node",
                {
                    "controller": LaunchConfiguration("controller"),
                    "output": LaunchConfiguration("output"),
                },
            ),
        ]
    )
