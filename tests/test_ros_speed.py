"""Reduced speed over ROS (issue 17.5): /control/reduced_speed caps the tool's speed while the arm
moves, as measured from /joint_states by a kinematics of the test's own, and /safety/status says
so. sim_node and control_node run as processes over real rclpy/DDS; the timeouts are upper
bounds for start-up and discovery on a busy 2-core machine, not waits that make it pass.
"""

from __future__ import annotations

import json
import time

import numpy as np
from conftest import COMMANDS, wait_for
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.common import COMMAND_QOS
from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.safety.speed import REDUCED_TCP_SPEED

STARTUP = 90.0
ROBOT = load_robot()
NAMES = ROBOT.command_names
KINEMATICS = Kinematics(ROBOT)
STRIDE = 4  # joint states per speed sample: ~17 ms at sim_node's 240 Hz


def status(probe) -> dict:
    msgs = probe.messages("/safety/status")
    if not msgs:
        return {}
    return {kv.key: json.loads(kv.value) for kv in msgs[-1].status[0].values if kv.key != "msg"}


def tool_speeds(probe, since: float) -> np.ndarray:
    """The tool's measured speed over every `STRIDE` /joint_states since `since` (monotonic),
    from the positions and stamps alone."""
    stamps, points = [], []
    for msg in probe.messages("/joint_states", since)[::STRIDE]:
        q = ROBOT.command_vector(dict(zip(msg.name, msg.position, strict=True)))[:7]
        stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
        points.append(KINEMATICS.ee_position(q))
    if len(points) < 2:
        return np.zeros(0)
    span = np.diff(stamps)
    keep = span > 0
    return np.linalg.norm(np.diff(points, axis=0), axis=1)[keep] / span[keep]


def test_reduced_speed_caps_the_measured_tool_speed_while_the_arm_moves(graph_of, probe):
    graph_of("sim_node", "control_node")
    wait_for(lambda: probe.messages(COMMANDS), STARTUP, "control_node commands")
    wait_for(lambda: probe.messages("/joint_states"), STARTUP, "joint states")
    wait_for(lambda: "reduced_speed" in status(probe), STARTUP, "control_node status")
    assert status(probe)["reduced_speed"] is False
    chunks = probe.node.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND_QOS)
    reduced = probe.node.create_publisher(Bool, "/control/reduced_speed", COMMAND_QOS)
    for pub in (chunks, reduced):
        wait_for(lambda pub=pub: pub.get_subscription_count() > 0, STARTUP, f"{pub.topic} matched")
    newest = probe.messages("/joint_states")[-1]
    target = ROBOT.command_vector(dict(zip(newest.name, newest.position, strict=True)))
    target[[0, 3, 5]] += [-1.0, 0.8, 0.5]  # a far pose: approached at over 1 m/s at the tool
    sent = time.monotonic()
    chunks.publish(chunk_to_msg(TimedChunk(time.time(), 0.1, np.tile(target, (45, 1))), NAMES))
    wait_for(
        lambda: (s := tool_speeds(probe, sent)).size and s.max() > 2 * REDUCED_TCP_SPEED,
        5.0,
        "the tool faster than the reduced speed",
    )
    reduced.publish(Bool(data=True))
    switched = time.monotonic()
    wait_for(lambda: status(probe).get("reduced_speed"), 5.0, "reduced speed in the status")
    # Braking from over 1 m/s at the joints' 5 rad/s² takes well under 0.5 s.
    settled = wait_for(
        lambda: (s := tool_speeds(probe, switched + 0.5)).size > 40 and [s],
        5.0,
        "a second of joint states at reduced speed",
    )
    (settled,) = settled
    assert settled.max() <= REDUCED_TCP_SPEED * 1.05, settled.max()
    assert settled.max() > 0.5 * REDUCED_TCP_SPEED  # still moving: capped, not stopped
