"""ros2 launch robot_policy teleop_record.launch.py root:=/path/dataset [device:=...] [task:=...]

Recording demonstrations: sim_node + control_node + teleop_node + recorder_node, parameters from
config/teleop_record_graph.yaml (the file `robot-policy up` runs); the launch arguments
override a few. The keyboard (and the SpaceMouse's record/discard keys) read a terminal, which
`ros2 launch` does not give its nodes: run teleop_node with `ros2 run` in a terminal of its own
for those, or use the gamepad.
"""

from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from robot_policy.graph.launch_support import cell, text


def generate_launch_description() -> LaunchDescription:
    task = LaunchConfiguration("task")
    return cell(
        "teleop_record_graph.yaml",
        ("root", "device", "task", "task_text"),
        {
            "sim_node": {"task": task},
            "control_node": {},
            "teleop_node": {"device": LaunchConfiguration("device"), "task": task},
            "recorder_node": {"root": text("root"), "task_text": text("task_text")},
        },
    )
