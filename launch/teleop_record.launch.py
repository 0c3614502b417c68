"""ros2 launch robot_policy teleop_record.launch.py root:=/path/dataset [device:=...] [task:=...]

Recording demonstrations: sim_node + control_node + teleop_node + recorder_node, parameters from
config/teleop_record_graph.yaml (the file `robot-policy up` runs); the launch arguments
override a few. The keyboard (and the SpaceMouse's record/discard keys) read a terminal, which
`ros2 launch` does not give its nodes: run teleop_node with `ros2 run` in a terminal of its own
for those, or use the gamepad.
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
                    [FindPackageShare("robot_policy"), "config", "teleop_record_graph.yaml"]
                ),
                description="graph parameter file",
            ),
            DeclareLaunchArgument("root", description="dataset folder (created or appended to)"),
            DeclareLaunchArgument(
                "device",
                default_value="gamepad",
                description="keyboard|gamepad|spacemouse|scripted",
            ),
            DeclareLaunchArgument("task", default_value="push", description="reach, push, lift"),
            DeclareLaunchArgument(
                "task_text",
                default_value="push the red cube to the green target",
                description="instruction stored with every frame",
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false"),
            graph_node("sim_node", {"task": task}),
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
