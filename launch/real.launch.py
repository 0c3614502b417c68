"""ros2 launch robot_policy real.launch.py checkpoint:=/path [backend:=] [controller:=] [output:=]

A real arm: perception_node (camera) + policy_node + control_node, parameters from
config/real_graph.yaml (the file `robot-policy up` runs). The arm's ros2_control driver is
started separately (e.g. franka_ros2's or the UR driver's launch file) and must provide
/joint_states and the controller named by `controller`.
"""

from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from robot_policy.graph.launch_support import cell, text


def generate_launch_description() -> LaunchDescription:
    return cell(
        "real_graph.yaml",
        ("checkpoint", "backend", "controller", "output", "camera_source"),
        {
            "perception_node": {"source": text("camera_source")},
            "policy_node": {
                "checkpoint": text("checkpoint"),
                "backend": LaunchConfiguration("backend"),
            },
            "control_node": {
                "controller": LaunchConfiguration("controller"),
                "output": LaunchConfiguration("output"),
            },
        },
        required=("checkpoint",),
    )
