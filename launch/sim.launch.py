"""ros2 launch robot_policy sim.launch.py [task:=push] [checkpoint:=/path] [output:=commands]

The simulated cell: sim_node + policy_node + control_node with their parameters from
config/sim_graph.yaml (the file `robot-policy up` runs); the launch arguments override a few.
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
                    [FindPackageShare("robot_policy"), "config", "sim_graph.yaml"]
                ),
                description="graph parameter file",
            ),
            DeclareLaunchArgument("task", default_value="push", description="reach, push, lift"),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="'' = the shipped push_flow policy"
            ),
            DeclareLaunchArgument(
                "output", default_value="joint_trajectory", description="joint_trajectory|commands"
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false"),
            graph_node("sim_node", {"task": LaunchConfiguration("task")}),
            graph_node(
                "policy_node",
                {"checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str)},
            ),
            graph_node("control_node", {"output": LaunchConfiguration("output")}),
        ]
    )
