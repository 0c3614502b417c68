"""What every node shares: QoS profiles, clock conversions, and the `main` wrapper.

QoS follows the issue and ros2_control practice: sensor streams are best-effort keep-last (a late
camera frame is worthless, and a best-effort subscriber also matches a reliable publisher);
commands, chunks and the e-stop are reliable with depth 1 (only the newest matters, and it must
arrive). `/joint_states` is published reliable like ros2_control's joint_state_broadcaster, so
robot_state_publisher and rviz, which subscribe reliable, still match.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
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

from robot_policy import settings
from robot_policy.runtime.rate_loop import enter_realtime, promote_normal_threads, realtime_priority

T = TypeVar("T")

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


_ARRAY_TYPES = {
    bool: Parameter.Type.BOOL_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    float: Parameter.Type.DOUBLE_ARRAY,
    str: Parameter.Type.STRING_ARRAY,
}
_INT_LIMIT = 2**63 - 1


def descriptor(p: settings.Parameter) -> ParameterDescriptor:
    """A ParameterDescriptor from a schema field: description, range, choices as text.

    Dynamically typed (and coerced by `settings.from_flat`), because YAML writes `10` for a
    rate that rclpy would then refuse as an integer where a double was declared.
    """
    d = ParameterDescriptor(description=p.description, dynamic_typing=True)
    if p.choices is not None:
        d.additional_constraints = f"one of: {', '.join(map(str, p.choices))}"
    if p.low is not None or p.high is not None:
        if p.type is int:
            low = -_INT_LIMIT if p.low is None else int(p.low)
            d.integer_range = [IntegerRange(from_value=low, to_value=_high(p, _INT_LIMIT))]
        elif p.type is float:
            low = -math.inf if p.low is None else float(p.low)
            d.floating_point_range = [
                FloatingPointRange(from_value=low, to_value=float(_high(p, math.inf)))
            ]
    return d


def _high(p: settings.Parameter, unbounded: float) -> float:
    return unbounded if p.high is None else type(unbounded)(p.high)


def declare_parameters(node: Node, schema: type[T], exclude: Collection[str] = ()) -> T:
    """Declare every flattened field of the dataclass `schema` (but `exclude`), read the
    values back and return them as a validated `schema` instance, so a bad value is a clear
    startup error naming the parameter. An empty-list default is declared typed by its
    element (rclpy cannot infer a type from []) and reads back as []."""
    values: dict[str, Any] = {}
    for p in settings.flatten(schema):
        if p.name in exclude:
            continue
        d = descriptor(p)
        default = list(p.default) if isinstance(p.default, tuple | list) else p.default
        if isinstance(default, list) and not default:
            d.dynamic_typing = False
            (item,) = set(typing.get_args(p.type)) - {Ellipsis} or {str}
            node.declare_parameter(p.name, _ARRAY_TYPES.get(item, Parameter.Type.STRING_ARRAY), d)
            try:
                values[p.name] = list(node.get_parameter(p.name).value)
            except ParameterUninitializedException:
                values[p.name] = []
            continue
        node.declare_parameter(p.name, default, d)
        value = node.get_parameter(p.name).value
        values[p.name] = (
            list(value)
            if not isinstance(value, str | bytes) and hasattr(value, "__len__")
            else value
        )
    return settings.from_flat(schema, values, node.get_name())


@contextmanager
def realtime_thread(node: Node, priority: int, what: str) -> Iterator[bool]:
    """`realtime_priority` for one of a node's threads, a refusal logged naming `what`;
    yields whether the thread runs at that priority (for the node's status)."""
    with realtime_priority(priority) as not_realtime:
        if not_realtime is not None and priority:
            node.get_logger().warning(f"{what} at normal priority: {not_realtime}")
        yield not_realtime is None


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
            priority = getattr(node, "callback_priority", 0)
            if priority and (not_realtime := enter_realtime(priority)) is not None:
                node.get_logger().warning(f"callbacks at normal priority: {not_realtime}")
            elif priority > 1:
                # The middleware's own threads deliver what the callbacks handle: just below.
                moved = promote_normal_threads(priority - 1)
                node.get_logger().info(f"{moved} middleware threads at SCHED_FIFO {priority - 1}")
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
