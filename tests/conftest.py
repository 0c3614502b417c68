"""Shared fixtures for the ROS tests: an isolated DDS domain and a probe node.

Every test that touches DDS gets a ROS_DOMAIN_ID of its own and localhost-only discovery, so
parallel runs (and other machines on the network) cannot cross-talk. Waits are on conditions
with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_TESTS = itertools.count()
_LEAVE_TIMEOUT = 60.0
_DEADLOCKED: list[Any] = []


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config) -> None:
    """A deadlocked participant hangs its destructor, and so the interpreter's exit: once the
    report is written, leave without running destructors (failing: a test failed on it)."""
    if _DEADLOCKED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(max(1, *_EXIT_STATUS))


@pytest.fixture
def isolated_ros_env(monkeypatch) -> dict[str, str]:
    # A domain per test, not just per process: a node still shutting down from the previous
    # test must not publish into this one. 100..199 stays inside the valid 0..232 range.
    domain = 100 + (os.getpid() + next(_TESTS)) % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOCALHOST_ONLY", "1")
    return dict(os.environ)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Probe:
    """A node in its own rclpy context, spun in a background thread, for tests to poke a graph
    with: it records every message on the topics it is asked to watch, with receipt times."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        # No /rosout publisher: the probe logs nothing, and destroying that publisher at
        # shutdown once deadlocked inside Fast DDS (its timer thread) and hung the suite.
        rclpy.init(args=["--ros-args", "--disable-rosout-logs"], context=self.context)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[tuple[float, Any]]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self._closed = False

    def watch(self, msg_type: type, topic: str, qos: Any) -> None:
        self.received[topic] = []

        def record(msg: Any) -> None:
            with self._lock:
                self.received[topic].append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, record, qos)

    def messages(self, topic: str, since: float = -1.0) -> list[Any]:
        with self._lock:
            return [m for t, m in self.received[topic] if t >= since]

    def stamped(self, topic: str) -> list[tuple[float, Any]]:
        with self._lock:
            return list(self.received[topic])

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 30.0) -> Any:
        client = self.node.create_client(srv_type, name)
        wait_for(lambda: client.wait_for_service(timeout_sec=0.1), timeout, f"service {name}")
        future = client.call_async(request)
        return wait_for(lambda: future.result() if future.done() else None, timeout, name)

    def close(self) -> None:
        """Leave the graph; closing twice is a no-op. Fast DDS 3.2 can deadlock a participant
        whose peers leave while its announcement timer fires (eProsima/Fast-DDS#6502, the
        reception thread holds the discovery mutex the timer thread waits for): it never
        leaves then. Tests therefore close the probe before stopping their graph, and a
        teardown stuck in that deadlock fails the test, naming it, instead of hanging the
        suite."""
        if self._closed:
            return
        self._closed = True
        import rclpy

        def leave() -> None:
            self.executor.shutdown()
            self._thread.join(timeout=10)
            self.node.destroy_node()
            rclpy.try_shutdown(context=self.context)

        leaving = threading.Thread(target=leave, daemon=True)
        leaving.start()
        leaving.join(timeout=_LEAVE_TIMEOUT)
        if leaving.is_alive():
            _DEADLOCKED.append(self)  # never destroyed: see pytest_unconfigure
            pytest.fail(
                f"the probe's DDS participant did not leave within {_LEAVE_TIMEOUT:.0f} s: "
                "Fast DDS deadlocked in it (eProsima/Fast-DDS#6502)"
            )


@pytest.fixture
def probe(isolated_ros_env) -> Iterator[Probe]:
    p = Probe()
    yield p
    p.close()


COMMANDS = "/arm_controller/joint_trajectory"  # control_node's output in config/sim_graph.yaml


@pytest.fixture
def graph_topics() -> list[tuple[type, str, Any]]:
    """(message type, topic, QoS) the probe watches for `graph_of`; a test module overrides
    this fixture to watch more, or with another QoS."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from robot_policy.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS

    return [
        (JointState, "/joint_states", SENSOR_QOS),
        (DiagnosticArray, "/safety/status", STATE_QOS),
        (JointTrajectory, COMMANDS, COMMAND_QOS),
    ]


@pytest.fixture
def graph_of(probe, isolated_ros_env, tmp_path, graph_topics):
    """`graph_of(*nodes, **overrides)` starts those nodes of config/sim_graph.yaml, with
    parameter overrides per node, once the probe watches `graph_topics`; all stop after."""
    from robot_policy.graph.runner import DEFAULT_GRAPH, Graph

    graphs = []

    def start(*nodes: str, **overrides):
        log = open(tmp_path / "graph.log", "w")  # noqa: SIM115 - closed below
        graph = Graph(DEFAULT_GRAPH, overrides, only=list(nodes), env=isolated_ros_env, log=log)
        graphs.append((graph, log))
        for msg_type, topic, qos in graph_topics:
            if topic not in probe.received:
                probe.watch(msg_type, topic, qos)
        graph.start()
        return graph

    yield start
    probe.close()  # before the nodes leave: see Probe.close
    for graph, log in graphs:
        graph.stop()
        log.close()
