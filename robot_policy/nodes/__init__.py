"""rclpy nodes: thin adapters from topics and parameters to the ROS-free core.

The node executables are registered now so that `ros2 run robot_policy <node>` resolves on a
colcon build; each one that is not built yet says so and exits non-zero instead of pretending
to run.
"""

from collections.abc import Callable

_PLANNED = {
    "sim_node": "the ROS graph issue (PyBullet arm speaking ros2_control topics)",
    "perception_node": "the ROS graph issue (camera preprocessing)",
    "policy_node": "the ROS graph issue (asynchronous chunk inference)",
    "control_node": "the ROS graph issue (rate loop + safety filter)",
    "teleop_node": "the teleop issue (operator devices)",
    "recorder_node": "the teleop issue (episode recording)",
}


def _not_built(name: str) -> Callable[[], int]:
    def main() -> int:
        raise SystemExit(
            f"{name} is not part of this release yet; it arrives with {_PLANNED[name]}."
        )

    main.__name__ = f"{name}_main"
    return main


sim_node = _not_built("sim_node")
perception_node = _not_built("perception_node")
policy_node = _not_built("policy_node")
control_node = _not_built("control_node")
teleop_node = _not_built("teleop_node")
recorder_node = _not_built("recorder_node")
