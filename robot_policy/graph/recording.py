"""`robot-policy collect --ros` and `bench record`: recording episodes through the ROS 2 graph.

The recording graph (config/teleop_record_graph.yaml: sim_node, control_node, teleop_node,
recorder_node) runs as processes on an isolated DDS domain, as `robot-policy up` starts it. This
module is the referee, like `ros_eval` for evaluation: per episode it stops commanding, resets
the sim (episode k uses seed + k), restarts the teleop device and IK from the new state, resumes
commanding, and then either records the episode itself (the scripted device: start, stop
`settle_steps` frames after the task is first solved, or discard a failure, as the ROS-free
`collect_scripted` does) or leaves start/stop/discard to the operator's buttons and waits for the
recorder to report the episode over (human devices).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from std_srvs.srv import SetBool, Trigger
from tqdm import tqdm

from robot_policy.collect import CollectResult, Tally
from robot_policy.graph.referee import (
    STARTUP_TIMEOUT,
    GraphFailure,
    Referee,
    check_alive,
    running_graph,
)
from robot_policy.graph.runner import Graph
from robot_policy.nodes.common import STATE_QOS
from robot_policy.settings import config_path
from robot_policy.sim import SimConfig
from robot_policy.sim.tasks import TASK_SPECS

RECORD_GRAPH = config_path("teleop_record_graph.yaml")
POLL = 0.05  # s between checks of the sim's success latch and the recorder's status


class RecordReferee(Referee):
    """The evaluation referee plus the recorder's and teleop node's services."""

    def __init__(self, context: rclpy.Context) -> None:
        super().__init__(context)
        self.recorder = {
            a: self.create_client(Trigger, f"/recorder/{a}") for a in ("start", "stop", "discard")
        }
        self.reset_teleop = self.create_client(Trigger, "/teleop/reset")
        self.create_subscription(DiagnosticArray, "/recorder/status", self._on_status, STATE_QOS)

    def ready_clients(self) -> tuple:
        return (
            self.reset_sim,
            self.success,
            self.enable_control,
            self.reset_teleop,
            *self.recorder.values(),
        )

    def record(self, action: str) -> dict[str, Any]:
        """Call /recorder/<action>; its JSON answer, or GraphFailure with the refusal."""
        response = self.call(self.recorder[action], Trigger.Request())
        if not response.success:
            raise GraphFailure(f"/recorder/{action} refused: {response.message}")
        return json.loads(response.message)

    def new_episode(self, first: bool, record: bool) -> None:
        """Stop commanding, reset the sim (not before the first episode, which sim_node set up
        itself), restart the device from the new state, start recording if `record` (before
        anything moves: the first frame is the arm at rest), resume from the measured state."""
        self.call(self.enable_control, SetBool.Request(data=False))
        if not first:  # no stale command can follow: see /sim/reset's settle window
            self.call(self.reset_sim, Trigger.Request())
        self.call(self.reset_teleop, Trigger.Request())
        if record:
            self.record("start")
        self.enable()

    def wait_recorder_ready(self, graph: Graph, log: str) -> None:
        """Until the recorder waits for nothing: a publisher discovered on every recorded topic,
        and the topics that shape the dataset heard from."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self.recorder_status().get("waiting_for", [None]):
            check_alive(graph, log)
            if time.monotonic() > deadline:
                waiting = self.recorder_status().get("waiting_for", "its status")
                raise GraphFailure(f"recorder_node still waits for {waiting}; see {log}")
            time.sleep(POLL)

    def solved(self) -> bool:
        return bool(self.call(self.success, Trigger.Request()).success)

    def recorder_status(self) -> dict[str, Any]:
        return self.status.get("recorder_node", {})


def record_overrides(
    task: str,
    out: str | Path,
    device: str,
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    video_codec: str = "libsvtav1",
    sim_config: str | Path | None = None,
    fps: int = 10,
    camera_hz: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Node parameters for one recording session, on top of the graph file's."""
    overrides: dict[str, dict[str, Any]] = {
        "sim_node": {"task": task, "seed": seed, "camera_hz": camera_hz or float(fps)},
        # Nothing moves the arm before the referee's first episode: it starts from seed's layout.
        "control_node": {"autostart": False},
        "teleop_node": {"device": device, "task": task, "episode_control": device != "scripted"},
        "recorder_node": {
            "root": str(Path(out).resolve()),
            "task_text": TASK_SPECS[task].description,
            "fps": fps,
            "video_codec": video_codec,
        },
    }
    if cameras:  # an empty list cannot be written as a `-p` override; the graph's is []
        overrides["sim_node"]["cameras"] = list(cameras)
        overrides["recorder_node"]["cameras"] = list(cameras)
    if sim_config is not None:
        overrides["sim_node"]["sim_config"] = str(Path(sim_config).resolve())
    return overrides


def collect_ros(
    task: str,
    episodes: int,
    out: str | Path,
    device: str = "scripted",
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    keep_failed: bool = False,
    video_codec: str = "libsvtav1",
    sim_config: str | Path | None = None,
    max_seconds: float | None = None,
    settle_steps: int = 5,
    progress: bool = True,
    log_path: str | Path | None = None,
) -> CollectResult:
    """Record `episodes` attempts through the recording graph into the dataset `out`.

    The time limit of an attempt is `max_seconds` or the task's episode length, from its reset.
    Scripted: saved when solved (or `keep_failed`), `settle_steps` frames after the first
    success. Human devices: the operator's buttons start, save and discard; an attempt still
    recording at its limit is saved if solved (or `keep_failed`), otherwise discarded; the
    device's quit ends the session early.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    config = SimConfig.from_yaml(sim_config) if sim_config else SimConfig()
    limit = max_seconds or config.episode_seconds[task]
    overrides = record_overrides(
        task, out, device, seed=seed, cameras=cameras, video_codec=video_codec,
        sim_config=sim_config,
    )  # fmt: skip
    fps = overrides["recorder_node"]["fps"]
    tally, resets = Tally(str(out), task), 0
    with running_graph(overrides, RECORD_GRAPH, log_path, RecordReferee) as (graph, ref, log):
        ref.wait_recorder_ready(graph, log)
        bar = tqdm(total=episodes, desc=f"collect --ros {task}", unit="ep", disable=not progress)
        while tally.attempted < episodes:
            try:
                ref.new_episode(first=resets == 0, record=device == "scripted")
            except GraphFailure:
                if _operator_quit(graph):  # quit pressed while the next attempt was set up
                    break
                raise
            resets += 1
            if device == "scripted":
                attempt = _scripted_episode(graph, ref, log, limit, settle_steps / fps)
            else:
                attempt = _operated_episode(graph, ref, log, limit)
            if attempt.ended == "quit":
                break
            if attempt.ended == "idle":
                continue  # nothing recorded before the limit: the next layout, not counted
            report = attempt.report
            if attempt.ended == "open" and (attempt.solved or keep_failed):
                report = ref.record("stop")
            elif attempt.ended == "open":
                ref.record("discard")
            tally.attempt(attempt.solved, None if report is None else report["frames"])
            bar.update()
            bar.set_postfix(success=f"{tally.successes}/{tally.attempted}")
        bar.close()
    return tally.result()


@dataclass(frozen=True)
class _Attempt:
    """How an attempt ended: "open" (still recording; the referee saves or discards it),
    "saved" (by the operator; `report` is the recorder's), "discarded", "idle" (the time limit
    came before anything was recorded) or "quit" (the operator ended the session)."""

    ended: str
    solved: bool = False
    report: dict[str, Any] | None = None


def _scripted_episode(
    graph: Graph, ref: RecordReferee, log: str, limit: float, settle: float
) -> _Attempt:
    """Record (started by the caller) until `settle` s after the task is first solved, or
    until `limit`."""
    began, solved_at = time.monotonic(), None
    while (now := time.monotonic()) - began < limit:
        check_alive(graph, log)
        if solved_at is None and ref.solved():
            solved_at = now
        if solved_at is not None and now - solved_at >= settle:
            break
        time.sleep(POLL)
    return _Attempt("open", solved_at is not None)


def _operated_episode(graph: Graph, ref: RecordReferee, log: str, limit: float) -> _Attempt:
    """Wait until the operator saves or discards an episode, quits, or `limit` passes."""
    before = ref.recorder_status()
    began = time.monotonic()
    while time.monotonic() - began < limit:
        if _operator_quit(graph):
            return _Attempt("quit")
        check_alive(graph, log)
        status = ref.recorder_status()
        if status.get("discarded") != before.get("discarded"):
            return _Attempt("discarded", ref.solved())
        if status.get("last_episode") != before.get("last_episode"):
            return _Attempt("saved", ref.solved(), status["last_episode"])
        time.sleep(POLL)
    return _Attempt("open" if ref.recorder_status().get("recording") else "idle", ref.solved())


def _operator_quit(graph: Graph) -> bool:
    """Whether teleop_node has ended: the device's quit (any other exit is a failure)."""
    ended = graph.exited()
    return ended is not None and ended == ("teleop_node", 0)
