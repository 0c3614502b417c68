"""viz_node: the running graph, live, in Rerun or Foxglove (`robot-policy up ... --viz rerun`).

Subscribes /joint_states (the robot model moves; at most `rate_hz`), /control/command (the
filtered command, at most `rate_hz`), the chunk topic (the current chunk as the end-effector's
planned path), one image topic per camera in `cameras`, /safety/status and /policy/status
(every number they carry: filter interventions and reasons, loop timing, inference latency).
It publishes nothing and the control loop never waits on it: it is a separate process, at
normal priority below the graph's SCHED_FIFO threads; its cost to the loop is measured in
BENCHMARKS.md. What each viewer gets is `robot_policy.viz.live`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from robot_policy.nodes import common
from robot_policy.nodes.chunk_msgs import ChunkRejected, chunk_from_msg
from robot_policy.nodes.images import msg_to_image
from robot_policy.nodes.parameters import VizNodeParameters
from robot_policy.robots import load_robot
from robot_policy.viz.live import open_view


class VizNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("viz_node", **kwargs)
        p = common.declare_parameters(self, VizNodeParameters)
        self.robot = load_robot(p.robot)
        self.view = open_view(p.viewer, self.robot, p.save, p.port)
        self.period = 1.0 / p.rate_hz
        self._last = {"joints": -math.inf, "command": -math.inf}
        self.create_subscription(JointState, "/joint_states", self._on_joints, common.SENSOR_QOS)
        self.create_subscription(
            JointState, "/control/command", self._on_command, common.SENSOR_QOS
        )
        self.create_subscription(JointTrajectory, p.chunk_topic, self._on_chunk, common.STATE_QOS)
        for name in p.cameras:
            self.create_subscription(
                Image,
                p.image_topic.format(name=name),
                lambda msg, name=name: self._on_image(name, msg),
                common.SENSOR_QOS,
            )
        for topic in ("/safety/status", "/policy/status"):
            group = topic.strip("/").replace("/", "_")
            self.create_subscription(
                DiagnosticArray,
                topic,
                lambda msg, group=group: self._on_status(group, msg),
                common.STATE_QOS,
            )
        self.get_logger().info(f"viz_node: {p.viewer}" + (f" -> {p.save}" if p.save else ""))

    def _due(self, what: str, stamp: float) -> bool:
        if stamp - self._last[what] < self.period:
            return False
        self._last[what] = stamp
        return True

    def _on_joints(self, msg: JointState) -> None:
        stamp = common.to_seconds(msg.header.stamp)
        if self._due("joints", stamp) and len(msg.name) == len(msg.position):
            self.view.joints(stamp, list(msg.name), list(msg.position))

    def _on_command(self, msg: JointState) -> None:
        stamp = common.to_seconds(msg.header.stamp)
        if self._due("command", stamp) and len(msg.name) == len(msg.position):
            self.view.command(stamp, list(msg.name), list(msg.position))

    def _on_chunk(self, msg: JointTrajectory) -> None:
        try:
            chunk = chunk_from_msg(msg, self.robot.command_names)
        except ChunkRejected as exc:  # control_node refuses it too, and says so
            self.get_logger().warning(f"chunk not shown: {exc}", throttle_duration_sec=5.0)
            return
        self.view.chunk(chunk.stamp, chunk.actions)

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            rgb = msg_to_image(msg)
        except ValueError as exc:
            self.get_logger().warning(f"{camera}: {exc}", throttle_duration_sec=5.0)
            return
        self.view.image(common.to_seconds(msg.header.stamp), camera, rgb)

    def _on_status(self, group: str, msg: DiagnosticArray) -> None:
        stamp = common.to_seconds(msg.header.stamp)
        for status in msg.status:
            values = dict(_numbers(status.values))
            if values:
                self.view.values(stamp, group, values)

    def close(self) -> None:
        self.view.close()


def _numbers(pairs) -> Iterator[tuple[str, float]]:
    """The numeric values of a status (JSON-encoded, as `common.diagnostics` writes them); a
    dict of counts (the filter's reasons) is flattened to `key.reason`."""
    for pair in pairs:
        try:
            value = json.loads(pair.value)
        except ValueError:
            continue
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, number in items:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if np.isfinite(number):
                yield (pair.key if sub is None else f"{pair.key}.{sub}"), float(number)


main = common.node_main(VizNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
