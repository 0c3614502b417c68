"""recorder_node in the recording graph: service orders, and a SIGKILL mid-episode.

The graph (config/teleop_record_graph.yaml, the scripted device driving) runs as processes on
an isolated DDS domain; the probe is the operator calling /recorder/*. Waits are on what the
nodes report, with deadlines for start-up on a busy machine.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import wait_for
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from test_ros_graph import latest_status, status_values

from robot_policy.data import LeRobotDataset, describe
from robot_policy.graph.recording import RECORD_GRAPH, record_overrides
from robot_policy.graph.runner import Graph
from robot_policy.nodes.common import SENSOR_QOS, STATE_QOS

STARTUP = 90.0


def recorder_status(probe) -> dict:
    return latest_status(probe, "/recorder/status") or {}


def call(probe, action: str) -> Trigger.Response:
    return probe.call(Trigger, f"/recorder/{action}", Trigger.Request(), timeout=STARTUP)


def record_episode(probe, frames: int) -> dict:
    """Start, wait until the recorder has written `frames` frames, stop: the stop's report."""
    assert call(probe, "start").success
    wait_for(
        lambda: recorder_status(probe).get("frames", 0) >= frames,
        30.0,
        f"{frames} frames recorded",
    )
    response = call(probe, "stop")
    assert response.success, response.message
    return json.loads(response.message)


@pytest.fixture
def recording_graph(probe, isolated_ros_env, tmp_path):
    """The recording graph writing to tmp_path/ds with one camera; yields (graph, root)."""
    root = tmp_path / "ds"
    overrides = record_overrides(
        "reach", root, "scripted", cameras=["front"], video_codec="libx264"
    )
    del overrides["control_node"]  # no referee here: control starts by itself (the graph's way)
    probe.watch(DiagnosticArray, "/recorder/status", STATE_QOS)
    streams = {
        "/camera/front/image_raw": (Image, SENSOR_QOS),
        "/sim/environment_state": (JointState, SENSOR_QOS),
        "/control/command": (JointState, STATE_QOS),
    }
    for topic, (msg_type, qos) in streams.items():
        probe.watch(msg_type, topic, qos)
    log = open(tmp_path / "graph.log", "w")  # noqa: SIM115 - closed below
    graphs = []

    def start(*only: str) -> Graph:
        subset = {n: overrides[n] for n in overrides if not only or n in only}
        graph = Graph(RECORD_GRAPH, subset, only=list(only) or None, env=isolated_ros_env, log=log)
        graphs.append(graph)
        graph.start()
        for topic in streams:  # the first start needs an image and the state's names
            wait_for(lambda topic=topic: probe.messages(topic), STARTUP, topic)
        if not only:  # ... and the recorder itself must have heard every stream
            wait_for(
                lambda: (s := recorder_status(probe)) and s.get("waiting_for") == [],
                STARTUP,
                "the recorder hearing every topic",
            )
        return graph

    yield start, root
    for graph in graphs:
        graph.stop()
    log.close()


def test_bad_service_orders_are_refused_with_the_reason(recording_graph, probe):
    start, _ = recording_graph
    start()
    for action in ("stop", "discard"):
        response = call(probe, action)
        assert not response.success and "not recording" in response.message, response.message
    assert call(probe, "start").success
    again = call(probe, "start")
    assert not again.success and "already recording" in again.message
    discarded = call(probe, "discard")
    assert discarded.success
    stop = call(probe, "stop")  # the discard ended the episode
    assert not stop.success and "not recording" in stop.message


def test_sigkill_mid_episode_keeps_every_saved_episode_and_the_dataset_appendable(
    recording_graph, probe
):
    start, root = recording_graph
    graph = start()
    reports = [record_episode(probe, 6), record_episode(probe, 4)]
    assert [r["episode"] for r in reports] == [0, 1]

    assert call(probe, "start").success
    wait_for(lambda: recorder_status(probe).get("frames", 0) >= 5, 30.0, "frames of episode 2")
    graph.kill("recorder_node")
    assert graph.exited() == ("recorder_node", -9)

    dataset = LeRobotDataset(root)  # recovers: the unfinished episode's files are dropped
    lengths = [r["frames"] for r in reports]
    assert [e["length"] for e in dataset.episodes] == lengths
    assert describe(root)["episodes"] == 2
    np.testing.assert_array_equal(dataset.column("index"), np.arange(sum(lengths)))
    for k, length in enumerate(lengths):
        episode = dataset.episode(k)
        assert episode["observation.images.front"].shape == (length, 96, 96, 3)
        assert np.isfinite(episode["action"]).all()

    restarted = time.monotonic()
    start("recorder_node")  # a new recorder appends to the same dataset
    # Discovery may still list the killed server: call once the new one is heard from.
    wait_for(
        lambda: any(
            status_values(m).get("waiting_for") == []
            for m in probe.messages("/recorder/status", since=restarted)
        ),
        STARTUP,
        "the new recorder hearing every topic",
    )
    third = record_episode(probe, 3)
    assert third["episode"] == 2
    after = LeRobotDataset(root)
    assert [e["length"] for e in after.episodes] == [*lengths, third["frames"]]
    np.testing.assert_array_equal(after.column("index"), np.arange(after.num_frames))


def test_a_start_waits_until_every_recorded_topic_has_a_publisher(
    probe, isolated_ros_env, tmp_path
):
    # An episode started before discovery matched the command's publisher recorded nothing.
    root = tmp_path / "ds"
    overrides = record_overrides("reach", root, "scripted", video_codec="libx264")
    probe.watch(DiagnosticArray, "/recorder/status", STATE_QOS)
    graphs = []

    def start(*only: str) -> None:
        subset = {n: overrides[n] for n in only}
        graphs.append(Graph(RECORD_GRAPH, subset, only=list(only), env=isolated_ros_env))
        graphs[-1].start()

    def waiting_for(topics: list[str]) -> None:
        wait_for(lambda: recorder_status(probe).get("waiting_for") == topics, STARTUP, str(topics))

    try:
        start("sim_node", "recorder_node")  # nothing publishes /control/command
        waiting_for(["/control/command"])
        refused = call(probe, "start")
        assert not refused.success
        assert "no publisher discovered yet on /control/command" in refused.message
        assert not root.exists()  # nothing was created
        start("control_node")
        waiting_for([])
        started = call(probe, "start")
        assert started.success, started.message
    finally:
        for graph in graphs:
            graph.stop()
