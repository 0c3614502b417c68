"""/control/enable true under a moving arm (issue 17): refused, so no velocity step reaches it.

Enabling restarts control_node's filter from the measured position at zero velocity; under an arm
moving at 0.3 rad/s that was a 30 rad/s² step (the limit is 5, config/safety/panda.yaml). Now the
call is refused, with the moving joint and its speed, until the arm is still. The ROS test runs
sim_node and control_node as processes over real rclpy/DDS; its timeouts are upper bounds for
start-up and discovery on a busy 2-core machine, not waits that make it pass. The unit tests
check the velocity control_node measures and the refusal it answers, without a graph.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from conftest import COMMANDS, wait_for
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.common import COMMAND_QOS
from robot_policy.nodes.control_enable import STATE_MAX_AGE, MeasuredVelocity, enable_refusal
from robot_policy.nodes.parameters import ControlNodeParameters
from robot_policy.robots import load_robot
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.safety import SafetyConfig

STARTUP = 90.0
ROBOT = load_robot()
NAMES = ROBOT.command_names
STATE_NAMES = [*ROBOT.arm_joint_names, *(j.name for j in ROBOT.fingers)]
PERIOD = 0.01  # control_node rate_hz 100 in config/sim_graph.yaml
MAX_SPEED = ControlNodeParameters.enable_max_speed  # the default, which the graph keeps
# Every command the node sends, however far the probe's executor falls behind: a dropped one
# would look like a velocity jump of two ticks.
ALL_COMMANDS_QOS = QoSProfile(
    depth=10_000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)


@pytest.fixture
def graph_topics(graph_topics):
    """Commands with a deep queue instead of the default depth 1."""
    return [
        *(w for w in graph_topics if w[1] != COMMANDS),
        (JointTrajectory, COMMANDS, ALL_COMMANDS_QOS),
    ]


def ramp_chunk(start: np.ndarray, speed: float, stamp: float) -> TimedChunk:
    """16 actions at 10 Hz moving joint 1 at `speed` rad/s from `start`."""
    actions = np.tile(start, (16, 1))
    actions[:, 0] += speed * 0.1 * np.arange(16)
    return TimedChunk(stamp, 0.1, actions)


def commanded_velocities(probe, since: float = -1.0) -> np.ndarray:
    """The velocity of every command point received since `since` (monotonic), in order."""
    return np.array([m.points[0].velocities for m in probe.messages(COMMANDS, since)])


def measured(probe) -> tuple[np.ndarray, np.ndarray]:
    """The newest /joint_states as action-order position and velocity."""
    msg = probe.messages("/joint_states")[-1]
    position = ROBOT.command_vector(dict(zip(msg.name, msg.position, strict=True)))
    velocity = ROBOT.command_vector(dict(zip(msg.name, msg.velocity, strict=True)))
    return position, velocity


def test_enable_is_refused_while_the_arm_moves_and_accepted_once_it_is_still(graph_of, probe):
    graph_of("sim_node", "control_node")
    wait_for(lambda: probe.messages(COMMANDS), STARTUP, "control_node commands")
    wait_for(lambda: probe.messages("/joint_states"), STARTUP, "joint states")
    chunks = probe.node.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND_QOS)
    chunks.publish(chunk_to_msg(ramp_chunk(measured(probe)[0], 0.3, time.time()), NAMES))
    wait_for(
        lambda: commanded_velocities(probe)[-1][0] > 0.29 and measured(probe)[1][0] > 0.2,
        5.0,
        "the arm cruising at 0.3 rad/s",
    )
    since = time.monotonic()
    reply = probe.call(SetBool, "/control/enable", SetBool.Request(data=True))
    assert not reply.success, reply.message
    speed = re.search(r"panda_joint1 at (\d+\.\d+) rad/s measured", reply.message)
    assert "moving" in reply.message and speed, reply.message
    assert 0.2 < float(speed.group(1)) < 0.4, reply.message
    # The chunk runs out; the filter brakes the arm to rest (hold, then stop).
    wait_for(
        lambda: (
            np.abs(measured(probe)[1]).max() < MAX_SPEED / 5
            and np.abs(commanded_velocities(probe)[-1]).max() < 1e-9
        ),
        10.0,
        "the arm at rest",
    )
    enabled_at = time.monotonic()
    reply = probe.call(SetBool, "/control/enable", SetBool.Request(data=True))
    assert reply.success and reply.message == "enabled", reply.message
    wait_for(lambda: len(probe.messages(COMMANDS, enabled_at)) >= 20, 5.0, "commands after enable")
    np.testing.assert_allclose(
        probe.messages(COMMANDS)[-1].points[0].positions, measured(probe)[0], atol=2e-3
    )
    # From before the refused call through the accepted one: never a step beyond a·dt.
    velocities = commanded_velocities(probe, since)
    assert len(velocities) >= 20
    accel = SafetyConfig.for_robot().joint_limits().arrays(NAMES)["acceleration"]
    steps = np.abs(np.diff(velocities, axis=0))
    worst = int(np.argmax((steps / accel).max(axis=1)))
    assert (steps <= accel * PERIOD * 1.01).all(), (worst, velocities[worst : worst + 2])


# --- the measurement and the answer, without a graph --------------------------------------


def state(positions: np.ndarray) -> list[float]:
    """Action-order positions as /joint_states positions (the width split over two fingers)."""
    return [*positions[:-1], positions[-1] / 2, positions[-1] / 2]


def test_the_drivers_velocity_is_used_when_it_publishes_one():
    velocity = MeasuredVelocity(ROBOT)
    assert velocity.velocity is None
    rates = np.append(np.linspace(0.1, 0.7, 7), 0.02)  # the width opens at 2 cm/s
    velocity.update(STATE_NAMES, state(np.zeros(8)), state(rates), stamp=1.0)
    np.testing.assert_allclose(velocity.velocity, rates)


def test_without_a_velocity_it_is_estimated_from_positions_and_stamps():
    velocity = MeasuredVelocity(ROBOT)
    home = np.append(np.array(ROBOT.home), 0.04)
    moved = home + np.append(np.full(7, 0.003), 0.001)
    velocity.update(STATE_NAMES, state(home), [], stamp=10.0)
    assert velocity.velocity is None  # one position: no speed yet
    velocity.update(STATE_NAMES, state(moved), [], stamp=10.01)
    np.testing.assert_allclose(velocity.velocity, np.append(np.full(7, 0.3), 0.1))
    velocity.update(STATE_NAMES, state(moved + 1.0), [], stamp=10.01)  # same stamp: no time
    np.testing.assert_allclose(velocity.velocity, np.append(np.full(7, 0.3), 0.1))
    velocity.update(STATE_NAMES, state(moved), [], stamp=10.02)
    np.testing.assert_allclose(velocity.velocity, 0.0, atol=1e-9)
    velocity.update(STATE_NAMES[:-1], state(moved)[:-1], [], stamp=10.03)  # a finger missing
    assert velocity.velocity is None


def test_the_refusal_names_the_fastest_joint_and_its_speed():
    still = np.full(8, 0.01)
    assert enable_refusal(still, 0.005, NAMES, MAX_SPEED) is None
    moving = still.copy()
    moving[3] = -0.31
    message = enable_refusal(moving, 0.005, NAMES, MAX_SPEED)
    assert "moving (panda_joint4 at 0.310 rad/s measured" in message
    gripper = still.copy()
    gripper[-1] = 0.08
    assert "gripper at 0.080 m/s" in enable_refusal(gripper, 0.005, NAMES, MAX_SPEED)


@pytest.mark.parametrize(
    ("velocity", "age", "why"),
    [
        (None, 0.005, "no joint velocity measured yet"),
        (np.zeros(8), STATE_MAX_AGE + 0.1, "s old"),
        (np.zeros(8), float("nan"), "s old"),
        (np.append(np.zeros(7), np.nan), 0.005, "not finite"),
    ],
)
def test_an_unknown_speed_is_refused_too(velocity, age, why):
    assert why in enable_refusal(velocity, age, NAMES, MAX_SPEED)
