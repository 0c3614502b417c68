"""ros2 launch robot_policy intervention.launch.py root:=/path/dataset [checkpoint:=/path]

Human interventions during a policy rollout: sim_node + policy_node + control_node +
teleop_node (take-over mode) + recorder_node (with the `intervention` flag), parameters from
config/intervention_graph.yaml (the file `robot-policy up` runs). See teleop_record.launch.py
for the devices that need a terminal.
"""

from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from robot_policy.graph.launch_support import cell, text


def generate_launch_description() -> LaunchDescription:
    task = LaunchConfiguration("task")
    return cell(
        "intervention_graph.yaml",
        ("root", "checkpoint", "device", "task", "task_text"),
        {
            "sim_node": {"task": task},
            "policy_node": {"checkpoint": text("checkpoint")},
            "control_node": {},
            "teleop_node": {"device": LaunchConfiguration("device"), "task": task},
            "recorder_node": {"root": text("root"), "task_text": text("task_text")},
        },
    )
