"""robot_policy: a ROS 2 robot learning workbench.

Everything outside `robot_policy.nodes` and `robot_policy.graph` is a plain Python library and
imports no rclpy.
"""

import os

__version__ = "0.1.0"


def _import_pybullet_quietly() -> None:
    """pybullet's C code prints its build time on import, into every command's output and every
    node's log; import it once here with that file descriptor pointed at /dev/null. A failed
    import is left for the module that needs pybullet to raise, with its own message."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        try:
            import pybullet  # noqa: F401
        except ImportError:
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_pybullet_quietly()
