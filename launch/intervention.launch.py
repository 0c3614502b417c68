"""ros2 launch robot_policy intervention.launch.py root:=/path/dataset [checkpoint:=/path]

Human interventions during a policy rollout: sim_node + policy_node + control_node +
teleop_node (take-over mode) + recorder_node (with the `intervention` flag), parameters from
config/intervention_graph.yaml (the file `robot-policy up` runs). See teleop_record.launch.py
for the devices that need a terminal.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from robot_policy.graph.launch_support import graph_node


def generate_launch_description() -> LaunchDescription:
    task = LaunchConfiguration("task")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "graph",
                default_value=PathJoinSubstitution(
                    [FindPackageShare("robot_policy"), "config", "intervention_graph.yaml"]
                ),
                description="graph parameter file",
            ),
            DeclareLaunchArgument("root", description="dataset folder (created or appended to)"),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="'' = the shipped push_flow policy"
            ),
            DeclareLaunchArgument(
                "device", default_value="gamepad", description="keyboard|gamepad|spacemouse"
            ),
            DeclareLaunchArgument("task", default_value="push", description="reach, push, lift"),
            DeclareLaunchArgument(
                "task_text",
                default_value="push the red cube to the green target",
                description="instruction stored with every frame",
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false"),
            graph_node("sim_node", {"task": task}),
            graph_node(
                "policy_node",
                {"checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str)},
            ),
            graph_node("control_node", {}),
            graph_node("teleop_node", {"device": LaunchConfiguration("device"), "task": task}),
            graph_node(
                "recorder_node",
                {
                    "root": ParameterValue(LaunchConfiguration("root"), value_type=str),
                    "task_text": ParameterValue(LaunchConfiguration("task_text"), value_type=str),
                },
            ),
        ]
    )
