"""What every node shares: QoS profiles, clock conversions, and the `main` wrapper.

QoS follows the issue and ros2_control practice: sensor streams are best-effort keep-last (a late
camera frame is worthless, and a best-effort subscriber also matches a reliable publisher);
commands, chunks and the e-stop are reliable with depth 1 (only the newest matters, and it must
arrive). `/joint_states` is published reliable like ros2_control's joint_state_broadcaster, so
robot_state_publisher and rviz, which subscribe reliable, still match.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions

SENSOR_QOS = qos_profile_sensor_data
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)


def diagnostics(
    node: Node,
    name: str,
    level: bytes,
    message: str,
    values: Mapping[str, Any],
    hardware_id: str = "",
) -> DiagnosticArray:
    """One node's status as a stamped DiagnosticArray; every value JSON-encoded, so a reader
    gets numbers, lists and dicts back with `json.loads` (the form the referee and tests use)."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=json.dumps(v)) for k, v in values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> Time:
    sec = int(seconds // 1)
    return Time(sec=sec, nanosec=min(int(round((seconds - sec) * 1e9)), 999_999_999))


def declare_parameters(node: Node, table: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare `name: (default, description)` parameters and return their values.

    Typed by the default but declared with dynamic typing and coerced here, because YAML
    writes `10` for a rate that rclpy would then refuse as an integer where a double was
    declared. An empty-list default is declared as a string array (rclpy cannot infer a type
    from []) and reads back as [].
    """
    values: dict[str, Any] = {}
    for name, (default, description) in table.items():
        descriptor = ParameterDescriptor(description=description, dynamic_typing=True)
        if isinstance(default, list) and not default:
            descriptor.dynamic_typing = False
            node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            try:
                values[name] = list(node.get_parameter(name).value)
            except ParameterUninitializedException:
                values[name] = []
            continue
        node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"parameter {name!r} must be true or false, got {value!r}")
        elif isinstance(default, (int, float, str)):
            try:
                value = type(default)(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"parameter {name!r}: {value!r} is not a {type(default).__name__}"
                ) from exc
        elif isinstance(default, list):
            value = list(value)
        values[name] = value
    return values


def node_main(factory: Callable[[], Node]) -> Callable[[list[str] | None], int]:
    """A console-script entry point that spins one node until Ctrl-C or SIGTERM.

    Both signals become KeyboardInterrupt in the main thread (rclpy's own handlers are off), so
    the node's `close()` stops its worker threads while the context is still valid; with rclpy
    shutting the context down from inside the signal handler, a thread publishing at that
    moment died on an invalid handle. `robot-policy up` stops children with SIGINT, process
    managers with SIGTERM.
    """

    def main(args: list[str] | None = None) -> int:
        rclpy.init(
            args=args if args is not None else sys.argv,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        node = None
        try:
            node = factory()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            if node is not None:
                close = getattr(node, "close", None)
                if close is not None:
                    close()
                node.destroy_node()
            rclpy.try_shutdown()
        return 0

    return main
