"""ros2 launch robot_policy sim.launch.py [task:=push] [checkpoint:=/path] [backend:=] [output:=]

The simulated cell: sim_node + policy_node + control_node with their parameters from
config/sim_graph.yaml (the file `robot-policy up` runs); the launch arguments override a few.
"""

from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from robot_policy.graph.launch_support import cell, text


def generate_launch_description() -> LaunchDescription:
    return cell(
        "sim_graph.yaml",
        ("task", "checkpoint", "backend", "output"),
        {
            "sim_node": {"task": LaunchConfiguration("task")},
            "policy_node": {
                "checkpoint": text("checkpoint"),
                "backend": LaunchConfiguration("backend"),
            },
            "control_node": {"output": LaunchConfiguration("output")},
        },
    )
