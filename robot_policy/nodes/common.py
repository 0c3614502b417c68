"""What every node shares: QoS profiles, clock conversions, and the `main` wrapper.

QoS follows the issue and ros2_control practice: sensor streams are best-effort keep-last (a late
camera frame is worthless, and a best-effort subscriber also matches a reliable publisher);
commands, chunks and the e-stop are reliable with depth 1 (only the newest matters, and it must
arrive). `/joint_states` is published reliable like ros2_control's joint_state_broadcaster, so
robot_state_publisher and rviz, which subscribe reliable, still match.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR_QOS = qos_profile_sensor_data
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)


def to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> Time:
    sec = int(seconds // 1)
    return Time(sec=sec, nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


def node_main(factory: Callable[[], Node]) -> Callable[[list[str] | None], int]:
    """A console-script entry point that spins one node until Ctrl-C or SIGTERM.

    SIGTERM is turned into a clean shutdown too, because `robot-policy up` and process managers
    stop children with it; a node that died on it would skip its own cleanup (joining worker
    threads, closing the simulator).
    """

    def main(args: list[str] | None = None) -> int:
        rclpy.init(args=args if args is not None else sys.argv)
        signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
        node = factory()
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
            rclpy.try_shutdown()
        return 0

    return main
