"""rclpy nodes: thin adapters from topics and parameters to the ROS-free core.

Each node lives in its own module with a `main` (the console scripts point there). The
teleop issue's node executables are registered already so that `ros2 run robot_policy <node>`
resolves on a colcon build; until they are built each says so and exits non-zero instead of
pretending to run.
"""

from collections.abc import Callable

_PLANNED = {
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


teleop_node = _not_built("teleop_node")
recorder_node = _not_built("recorder_node")
