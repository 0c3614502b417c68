"""A human intervention during a policy rollout, recorded through the ROS 2 graph.

config/intervention_graph.yaml runs: the shipped push policy drives the sim; teleop_node reads a
real keyboard device from a pseudo-terminal the test types into (Enter records, `i` takes over
and releases); recorder_node marks each frame with `intervention`. The flags must be 1 exactly
on the frames whose time falls while the operator held the take-over, as teleop_node stamped it
on /teleop/joy, and the operator must really have had the arm then.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import wait_for
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Joy
from test_data_lerobot_compat import hf_features, load_info
from test_ros_graph import latest_status

from robot_policy.data import LeRobotDataset
from robot_policy.graph.runner import Graph
from robot_policy.nodes.common import STATE_QOS, to_seconds

GRAPH = Path(__file__).resolve().parents[1] / "config" / "intervention_graph.yaml"
STARTUP = 120.0  # the policy loads torch and a checkpoint on a busy machine
ENTER, TAKE_OVER = b"\r", b"i"


@pytest.fixture
def operated_graph(probe, isolated_ros_env, tmp_path):
    """The graph with teleop_node on a pseudo-terminal; yields (type_keys, dataset root, alive):
    `alive()` fails the test, pointing at the log, once any node process has ended."""
    root = tmp_path / "hil"
    for msg_type, topic in (
        (Joy, "/teleop/joy"),
        (DiagnosticArray, "/safety/status"),
        (DiagnosticArray, "/recorder/status"),
    ):
        probe.watch(msg_type, topic, STATE_QOS)
    log = open(tmp_path / "graph.log", "w")  # noqa: SIM115 - closed below
    overrides = {"recorder_node": {"root": str(root), "video_codec": "libx264"}}
    nodes = ["sim_node", "policy_node", "control_node", "recorder_node"]
    graph = Graph(GRAPH, overrides, only=nodes, env=isolated_ros_env, log=log)
    terminal, operator_side = pty.openpty()
    teleop = subprocess.Popen(
        graph.command("teleop_node"),  # the graph file's keyboard, take-over mode
        stdin=operator_side,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=isolated_ros_env,
        start_new_session=True,
    )
    os.close(operator_side)
    graph.start()

    def alive() -> bool:
        ended = graph.exited()
        if ended is None and teleop.poll() is not None:
            ended = ("teleop_node", teleop.returncode)
        assert ended is None, f"{ended[0]} exited with {ended[1]}; see {log.name}"
        return True

    try:
        yield (lambda keys: os.write(terminal, keys)), root, alive
    finally:
        teleop.send_signal(signal.SIGINT)
        teleop.wait(timeout=10)
        graph.stop()
        os.close(terminal)
        log.close()


def test_an_intervention_is_flagged_exactly_on_the_taken_over_frames(operated_graph, probe):
    type_keys, root, alive = operated_graph
    safety = lambda: alive() and (latest_status(probe, "/safety/status") or {})  # noqa: E731
    recorder = lambda: alive() and (latest_status(probe, "/recorder/status") or {})  # noqa: E731
    wait_for(lambda: safety().get("chunks", {}).get("accepted", 0) >= 2, STARTUP, "policy chunks")

    def frames_after(count: int) -> int:
        target = recorder().get("frames", 0) + count
        wait_for(lambda: recorder().get("frames", 0) >= target, 30.0, f"{count} more frames")
        return target

    type_keys(ENTER)  # teleop_node calls /recorder/start
    wait_for(lambda: recorder().get("recording") is True, 30.0, "recording")
    frames_after(8)
    type_keys(TAKE_OVER)
    wait_for(lambda: safety().get("source") == "teleop", 10.0, "control following the operator")
    frames_after(12)
    type_keys(TAKE_OVER)  # release: the policy resumes teleop_timeout later
    wait_for(lambda: safety().get("source") == "policy", 10.0, "the policy driving again")
    frames_after(8)
    type_keys(ENTER)  # teleop_node calls /recorder/stop
    wait_for(lambda: recorder().get("episodes") == 1, 30.0, "the episode saved")

    report = recorder()["last_episode"]
    episode = LeRobotDataset(root).episode(0)
    flags = episode["intervention"].reshape(-1)
    assert len(flags) == report["frames"]

    # What the operator did, as teleop_node stamped it: (tick time, take-over) per tick.
    joy = sorted((to_seconds(m.header.stamp), m.buttons[1]) for m in probe.messages("/teleop/joy"))
    stamps = np.array([t for t, _ in joy])
    times = report["origin"] + np.arange(len(flags)) / 10.0  # the dataset's 10 fps grid
    expected = np.array([joy[i][1] for i in np.searchsorted(stamps, times, side="right") - 1])
    np.testing.assert_array_equal(flags, expected)

    taken = np.flatnonzero(flags)  # one contiguous take-over, with policy frames around it
    assert len(taken) >= 10 and np.all(np.diff(taken) == 1), flags
    assert taken[0] >= 5 and taken[-1] <= len(flags) - 5, flags
    # The operator held still (no motion keys): once the filter has braked the policy's motion,
    # the commanded arm holds where the take-over found it.
    held = episode["action"][taken[len(taken) // 2 :], :7]
    assert np.ptp(held, axis=0).max() < 1e-3, np.ptp(held, axis=0)

    # LeRobot reads the flag as a plain int64 column.
    info = load_info(root)
    assert info["features"]["intervention"] == {"dtype": "int64", "shape": (1,), "names": None}
    paths = sorted(str(p) for p in (root / "data").glob("*/*.parquet"))
    table = datasets.Dataset.from_parquet(paths, features=hf_features(info["features"]))
    np.testing.assert_array_equal(table.with_format("numpy")["intervention"], flags)
