"""The ROS graph end to end, over real rclpy/DDS on loopback with the nodes as processes.

Timeouts below are upper bounds for start-up and discovery on a busy 2-core machine, not waits
that make a test pass; the safety timing (e-stop, watchdog) is counted in control ticks or
checked against the configured timeouts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import COMMANDS, wait_for
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy.graph.referee import loop_report
from robot_policy.graph.runner import DEFAULT_GRAPH
from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.common import COMMAND_QOS, SENSOR_QOS, STATE_QOS, to_stamp
from robot_policy.robots import load_robot
from robot_policy.runtime.chunks import TimedChunk

STARTUP = 90.0
NAMES = load_robot().command_names
PERIOD = 0.01  # control_node rate_hz 100 in config/sim_graph.yaml


def status_values(msg: DiagnosticArray) -> dict:
    values = {}
    for kv in msg.status[0].values:
        try:
            values[kv.key] = json.loads(kv.value)
        except ValueError:
            values[kv.key] = kv.value
    return values


def latest_status(probe, topic: str) -> dict | None:
    msgs = probe.messages(topic)
    return status_values(msgs[-1]) if msgs else None


def command_array(msg: JointTrajectory) -> tuple[np.ndarray, np.ndarray]:
    point = msg.points[0]
    return np.array(point.positions), np.array(point.velocities)


def measured_at(msg: JointState) -> np.ndarray:
    """A /joint_states message as action-order positions."""
    return load_robot().command_vector(dict(zip(msg.name, msg.position, strict=True)))


def measured(probe) -> np.ndarray:
    return measured_at(probe.messages("/joint_states")[-1])


@pytest.fixture
def graph_topics(graph_topics):
    return [*graph_topics, (DiagnosticArray, "/sim/status", STATE_QOS)]


def publisher(probe, msg_type, topic):
    return probe.node.create_publisher(msg_type, topic, COMMAND_QOS)


def wait_controlled(probe) -> None:
    wait_for(lambda: probe.messages(COMMANDS), STARTUP, "control_node commands")
    wait_for(lambda: probe.messages("/joint_states"), STARTUP, "joint states")
    wait_for(lambda: latest_status(probe, "/safety/status"), STARTUP, "/safety/status")


def ramp_chunk(start: np.ndarray, speed: float, stamp: float) -> TimedChunk:
    """16 actions at 10 Hz moving joint 1 at `speed` rad/s from `start`."""
    actions = np.tile(start, (16, 1))
    actions[:, 0] += speed * 0.1 * np.arange(16)
    return TimedChunk(stamp, 0.1, actions)


def test_policy_chunks_drive_the_arm_and_a_dead_policy_ends_in_a_stop(graph_of, probe):
    graph = graph_of("sim_node", "policy_node", "control_node")
    wait_for(
        lambda: (
            (latest_status(probe, "/safety/status") or {}).get("chunks", {}).get("accepted", 0) >= 2
        ),
        STARTUP,
        "two chunks accepted by control_node",
    )
    start = measured(probe)
    wait_for(
        lambda: np.abs(measured(probe) - start).max() > 0.01, 10.0, "the arm moving under chunks"
    )
    sim = wait_for(lambda: latest_status(probe, "/sim/status"), 5.0, "/sim/status")
    assert int(sim["rejected"]) == 0, sim  # everything control_node sent, the JTC rules accept

    def ticks_with(reason: str) -> int:
        # The per-reason tick counts, not the last tick's reasons: the hold lasts 0.4 s
        # (hold_timeout to stop_timeout), shorter than the 0.5 s status period.
        status = latest_status(probe, "/safety/status") or {}
        return status.get("reasons", {}).get(reason, 0)

    holds, stops = ticks_with("watchdog_hold"), ticks_with("watchdog_stop")
    graph.kill("policy_node")
    killed = time.monotonic()
    # The last chunk is a plan for up to 1.5 s; once nothing covers now, hold, then stop.
    horizon = 1.6 + 0.1  # chunk span + hold_timeout
    wait_for(
        lambda: ticks_with("watchdog_hold") > holds,
        horizon + 2.0,
        "watchdog hold after the policy died",
    )
    held = time.monotonic()
    wait_for(lambda: ticks_with("watchdog_stop") > stops, 2.0, "watchdog stop")
    assert held - killed <= horizon + 1.0
    # Stopped: the commands no longer move.
    wait_for(
        lambda: np.abs(command_array(probe.messages(COMMANDS)[-1])[1]).max() < 1e-9,
        2.0,
        "zero commanded velocity",
    )
    before = command_array(probe.messages(COMMANDS)[-1])[0]
    since = time.monotonic()
    wait_for(lambda: len(probe.messages(COMMANDS, since)) >= 20, 5.0, "more commands")
    after = command_array(probe.messages(COMMANDS)[-1])[0]
    np.testing.assert_allclose(after, before, atol=1e-9)


def test_a_dead_control_node_leaves_the_arm_holding_where_it_stopped(graph_of, probe):
    # SIGKILL mid-motion: nothing brakes, but the arm's controller (sim_node's JTC, as a real
    # one) holds the last point it was sent, so the arm stops and stays.
    graph = graph_of("sim_node", "control_node")
    wait_controlled(probe)
    chunks = publisher(probe, JointTrajectory, "/policy/action_chunk")
    wait_for(lambda: chunks.get_subscription_count() > 0, STARTUP, "chunk topic matched")
    start = measured(probe)
    chunks.publish(chunk_to_msg(ramp_chunk(start, 0.3, time.time()), NAMES))
    wait_for(lambda: measured(probe)[0] > start[0] + 0.05, 5.0, "joint 1 moving")
    graph.kill("control_node")
    killed = time.monotonic()
    last = command_array(probe.messages(COMMANDS)[-1])[0]
    since = killed + 0.5
    wait_for(lambda: len(probe.messages("/joint_states", since)) >= 200, 5.0, "states after")
    after = np.array([measured_at(m) for m in probe.messages("/joint_states", since)])
    assert np.abs(after - after[0]).max() < 1e-3  # still
    np.testing.assert_allclose(after[-1][:7], last[:7], atol=5e-3)  # at the last command
    assert len(probe.messages(COMMANDS, killed + 0.1)) == 0


def test_a_slow_policy_never_leaves_the_arm_without_a_chunk(graph_of, probe):
    """150 ms per chunk (policy_node's latency_floor, which pads the real inference): each
    chunk is requested that much early, so the next one is there before the last runs out."""
    graph_of("sim_node", "policy_node", "control_node", policy_node={"latency_floor": 0.15})

    def control() -> dict:
        return latest_status(probe, "/safety/status") or {}

    wait_for(lambda: control().get("chunks", {}).get("accepted", 0) >= 2, STARTUP, "chunks")
    before = control()
    start = measured(probe)
    since = time.monotonic()
    wait_for(
        lambda: control().get("chunks", {}).get("accepted", 0) >= before["chunks"]["accepted"] + 8,
        30.0,
        "eight more chunks",
    )
    after = control()
    for reason in ("watchdog_hold", "watchdog_stop"):
        assert after["reasons"].get(reason, 0) == before["reasons"].get(reason, 0), after
    assert after["loop"]["chunk_age_ms_p50"] >= 150.0  # the policy really was that slow
    assert np.abs(measured(probe) - start).max() > 0.01  # and the arm moved under it
    commands = probe.messages(COMMANDS, since)
    moving = [np.abs(command_array(m)[1]).max() > 1e-6 for m in commands]
    assert len(commands) >= 100 and np.mean(moving) > 0.9, np.mean(moving)


def test_e_stop_brakes_within_two_ticks_and_latches_until_reset(graph_of, probe):
    graph_of("sim_node", "control_node")
    wait_controlled(probe)
    chunks = publisher(probe, JointTrajectory, "/policy/action_chunk")
    e_stop = publisher(probe, Bool, "/safety/e_stop")
    home = measured(probe)
    chunks.publish(chunk_to_msg(ramp_chunk(home, 0.3, time.time()), NAMES))
    # Cruising: the commanded joint-1 velocity reaches the ramp's 0.3 rad/s.
    wait_for(lambda: command_array(probe.messages(COMMANDS)[-1])[1][0] > 0.29, 5.0, "cruise speed")
    sent = time.monotonic()
    e_stop.publish(Bool(data=True))
    wait_for(lambda: latest_status(probe, "/safety/status")["e_stop"], 2.0, "e-stop status")
    wait_for(lambda: len(probe.messages(COMMANDS, sent)) >= 30, 5.0, "commands after e-stop")
    speeds = [command_array(m)[1][0] for m in probe.messages(COMMANDS, sent)]
    first_brake = next(i for i, v in enumerate(speeds) if v < 0.3 - 1e-6)
    assert first_brake <= 2, speeds[:5]  # at most two more ticks at cruise speed
    assert all(b <= a + 1e-12 for a, b in zip(speeds, speeds[1:], strict=False)), speeds
    assert speeds[-1] == pytest.approx(0.0, abs=1e-9)
    # Latched: a fresh chunk does not move the arm ...
    chunks.publish(chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES))
    since = time.monotonic()
    wait_for(lambda: len(probe.messages(COMMANDS, since)) >= 20, 5.0, "commands")
    assert max(abs(command_array(m)[1][0]) for m in probe.messages(COMMANDS, since)) < 1e-9
    # ... until reset; then the next chunk does.
    reply = probe.call(Trigger, "/safety/reset", Trigger.Request())
    assert reply.success and "was: e_stop" in reply.message
    chunks.publish(chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES))
    wait_for(
        lambda: command_array(probe.messages(COMMANDS)[-1])[1][0] > 0.1, 5.0, "motion after reset"
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: setattr(m.points[3], "positions", [float("nan")] * 8), "non-finite"),
        (lambda m: setattr(m, "joint_names", [*NAMES[:-1], "wrist_roll"]), "joint names"),
        (lambda m: setattr(m.points[2], "time_from_start", m.points[1].time_from_start),
         "not strictly increasing"),
        (lambda m: setattr(m.header, "stamp", to_stamp(0.0)), "stamp is zero"),
    ],
)  # fmt: skip
def test_malformed_chunks_are_rejected_and_the_arm_holds(graph_of, probe, mutate, reason):
    graph_of("sim_node", "control_node")
    wait_controlled(probe)
    chunks = publisher(probe, JointTrajectory, "/policy/action_chunk")
    msg = chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES)
    mutate(msg)
    start = command_array(probe.messages(COMMANDS)[-1])[0]
    chunks.publish(msg)
    status = wait_for(
        lambda: (s := latest_status(probe, "/safety/status")) and s["chunks"]["rejected"] and s,
        5.0,
        "the rejection in /safety/status",
    )
    assert reason in status["last_rejection"]
    assert status["chunks"]["accepted"] == 0
    since = time.monotonic()
    wait_for(lambda: len(probe.messages(COMMANDS, since)) >= 20, 5.0, "commands")
    for m in probe.messages(COMMANDS, since):
        np.testing.assert_allclose(command_array(m)[0], start, atol=1e-9)


def test_sim_node_rejects_what_a_joint_trajectory_controller_rejects(graph_of, probe):
    graph_of("sim_node")
    wait_for(lambda: probe.messages("/joint_states"), STARTUP, "joint states")
    pub = publisher(probe, JointTrajectory, COMMANDS)
    home = measured(probe)

    def trajectory(names=NAMES, times=(0.5, 1.0), velocities=None, stamp=0.0):
        msg = JointTrajectory(joint_names=list(names))
        msg.header.stamp = to_stamp(stamp)
        for k, t in enumerate(times):
            target = home.copy()
            target[0] += 0.2 * (k + 1)
            point = JointTrajectoryPoint(positions=target.tolist())
            point.time_from_start.sec, point.time_from_start.nanosec = int(t), int(t % 1 * 1e9)
            if velocities is not None:
                point.velocities = list(velocities[k])
            msg.points.append(point)
        return msg

    bad = [
        (trajectory(names=[*NAMES[:-1], "elbow"]), "unknown joints"),
        (trajectory(names=NAMES[:-1]), "partial goal"),
        (trajectory(times=(1.0, 0.5)), "not strictly increasing"),
        (trajectory(stamp=time.time() - 10.0), "ends in the past"),
        (trajectory(velocities=[[0.1] * 8, [0.1] * 8]), None),  # allowed by this sim's config
    ]
    for k, (msg, reason) in enumerate(bad[:-1]):
        pub.publish(msg)
        status = wait_for(
            lambda k=k: (s := latest_status(probe, "/sim/status")) and int(s["rejected"]) > k and s,
            5.0,
            f"rejection {k}",
        )
        assert reason in status["last_rejection"]
    assert np.abs(measured(probe) - home).max() < 1e-3  # nothing moved the arm
    pub.publish(trajectory())
    wait_for(lambda: measured(probe)[0] > home[0] + 0.1, 5.0, "the valid trajectory executing")


def test_control_can_be_disabled_and_restarts_from_the_measured_state(graph_of, probe):
    graph_of("sim_node", "control_node")
    wait_controlled(probe)
    assert probe.call(SetBool, "/control/enable", SetBool.Request(data=False)).success
    reset = probe.call(Trigger, "/sim/reset", Trigger.Request())
    assert reset.success and json.loads(reset.message)["seed"] == 1
    since = time.monotonic()
    assert probe.call(SetBool, "/control/enable", SetBool.Request(data=True)).success
    wait_for(lambda: len(probe.messages(COMMANDS, since)) >= 10, 5.0, "commands after enable")
    np.testing.assert_allclose(
        command_array(probe.messages(COMMANDS)[-1])[0], measured(probe), atol=2e-3
    )


def test_up_runs_a_graph_file_and_stops_cleanly_on_ctrl_c(probe, isolated_ros_env):
    probe.watch(JointState, "/sim/environment_state", SENSOR_QOS)
    cmd = [sys.executable, "-m", "robot_policy", "up", str(DEFAULT_GRAPH), "--only", "sim_node"]
    cmd += ["--set", "sim_node.task=reach"]  # the graph file says push
    proc = subprocess.Popen(cmd, env=isolated_ros_env, stderr=subprocess.PIPE, text=True)
    try:
        state = wait_for(
            lambda: probe.messages("/sim/environment_state"), STARTUP, "state from `up`"
        )[-1]
        assert state.name[-1] == "target.z" and len(state.name) == 6  # reach's layout: override won
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped ({'sim_node': 0})" in err


def test_operator_chunks_override_the_policy_until_released(graph_of, probe):
    # Interpolated: every streamed ramp starts at the measured position, so a held first action
    # (the shipped graph's execution) would keep re-commanding where the arm already is.
    graph_of("sim_node", "control_node", control_node={"scheduler.interpolate": True})
    wait_controlled(probe)
    policy = publisher(probe, JointTrajectory, "/policy/action_chunk")
    teleop = publisher(probe, JointTrajectory, "/teleop/action_chunk")
    policy.publish(chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES))
    wait_for(lambda: command_array(probe.messages(COMMANDS)[-1])[1][0] > 0.29, 5.0, "policy")
    # The operator streams chunks moving the other way; the policy keeps publishing too.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        teleop.publish(chunk_to_msg(ramp_chunk(measured(probe), -0.2, time.time()), NAMES))
        policy.publish(chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES))
        time.sleep(0.05)  # an operator device's pace (20 Hz), not a wait for a result
    assert command_array(probe.messages(COMMANDS)[-1])[1][0] < -0.1
    status = latest_status(probe, "/safety/status")
    assert status["source"] == "teleop"
    assert status["chunks"]["overridden"] > 0 and status["chunks"]["teleop"] > 0
    # Released: after teleop_timeout the policy's next chunk drives again.
    wait_for(lambda: latest_status(probe, "/safety/status")["source"] == "policy", 2.0, "release")
    policy.publish(chunk_to_msg(ramp_chunk(measured(probe), 0.3, time.time()), NAMES))
    wait_for(lambda: command_array(probe.messages(COMMANDS)[-1])[1][0] > 0.1, 5.0, "policy again")


def test_loop_report_tells_the_loops_own_misses_from_the_machines_stalls():
    control = {"loop": {"deadline_misses": 3, "miss_times": [[1.0, 1.02], [5.0, 5.03], [9.0, 9.1]]}}
    stalls = [(5.01, 0.02), (20.0, 0.05)]  # (start, seconds) as StallWitness reports them
    report = loop_report(control, stalls)
    assert report["own_deadline_misses"] == 2 and report["misses_in_machine_stalls"] == 1
    assert report["machine_stalls"] == 2 and "miss_times" not in report
    assert report["deadline_misses"] == 3
