"""`robot-policy eval --ros` and the demo: closed-loop episodes through the ROS 2 graph.

The graph (sim_node + policy_node + control_node, from config/sim_graph.yaml) runs as separate
processes talking over DDS on the wall clock, exactly as `robot-policy up` starts it. This
module is only the referee: per episode it disables the control node, resets the sim (episode k
uses seed + k, as in the in-process evaluation), restarts the policy's observation history,
re-enables control, and polls the sim's success latch until the task's time limit. It also
collects what the nodes report about themselves: loop rate and deadline misses, inference
latency, safety-filter interventions. A `StallWitness` watches the machine meanwhile, so the
control loop's own misses are told from those of a machine that ran nothing at its priority.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger
from tqdm import tqdm

from robot_policy.eval.success import success_fields
from robot_policy.features import IMAGE_PREFIX
from robot_policy.graph.runner import DEFAULT_GRAPH, Graph, effective_parameters
from robot_policy.nodes.common import STATE_QOS
from robot_policy.runtime.lerobot_worker import policy_spec
from robot_policy.runtime.stall_witness import Stall, StallWitness, overlaps
from robot_policy.runtime.strategies import check_ros
from robot_policy.sim import SimConfig

# Loading torch and a checkpoint and warming up takes a while on 2 busy cores.
STARTUP_TIMEOUT = 120.0
CALL_TIMEOUT = 10.0
# control_node refuses to resume a moving arm; a disabled one is still within ~0.1 s.
ENABLE_TIMEOUT = 5.0


class GraphFailure(RuntimeError):
    """A node died or did not answer; the message names it and points to the log."""


@dataclass
class RosEvalResult:
    task: str
    strategy: str
    episodes: int
    successes: int
    success_rate: float
    ci95_low: float
    ci95_high: float
    mean_seconds_to_success: float | None  # None when no episode succeeded
    outcomes: list[float | None] = field(default_factory=list)  # per episode: s to success
    control: dict = field(default_factory=dict)  # loop rate, misses, jitter, interventions
    policy: dict = field(default_factory=dict)  # inference latency, chunk counts
    ros: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def isolated_ros_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment whose DDS traffic stays on this machine and off domain 0, unless the user
    chose a domain: a simulated cell must never drive a real arm listening on the lab network."""
    env = dict(base if base is not None else os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


class Referee(Node):
    """Service clients and status listeners the evaluation drives the graph with."""

    def __init__(self, context: rclpy.Context) -> None:
        super().__init__("robot_policy_eval", context=context)
        self.reset_sim = self.create_client(Trigger, "/sim/reset")
        self.success = self.create_client(Trigger, "/sim/success")
        self.restart_policy = self.create_client(Trigger, "/policy/restart")
        self.enable_control = self.create_client(SetBool, "/control/enable")
        self.status: dict[str, dict[str, Any]] = {}
        self.status_time = -math.inf
        for topic in ("/safety/status", "/policy/status"):
            self.create_subscription(DiagnosticArray, topic, self._on_status, STATE_QOS)

    def ready_clients(self) -> tuple:
        """The services the graph must offer before the referee starts."""
        return (self.reset_sim, self.success, self.restart_policy, self.enable_control)

    def _on_status(self, msg: DiagnosticArray) -> None:
        self.status_time = time.monotonic()
        for status in msg.status:
            values = {}
            for kv in status.values:
                try:
                    values[kv.key] = json.loads(kv.value)
                except ValueError:
                    values[kv.key] = kv.value
            self.status[status.name.split(":")[0]] = values

    def wait_for_status(self, after: float, timeout: float = 3.0) -> None:
        """Block until a status message newer than `after` (monotonic) arrived, or timeout:
        the figures reported should include the last episode."""
        deadline = time.monotonic() + timeout
        while self.status_time <= after and time.monotonic() < deadline:
            time.sleep(0.02)

    def call(self, client, request) -> Any:
        future = client.call_async(request)
        deadline = time.monotonic() + CALL_TIMEOUT
        while not future.done():
            if time.monotonic() > deadline:
                raise GraphFailure(f"{client.srv_name} did not answer within {CALL_TIMEOUT} s")
            time.sleep(0.005)
        return future.result()

    def enable(self) -> None:
        """Resume control, asking again while control_node refuses because the arm still
        moves (just disabled mid-motion, or the state it last heard predates a sim reset)."""
        deadline = time.monotonic() + ENABLE_TIMEOUT
        while not (reply := self.call(self.enable_control, SetBool.Request(data=True))).success:
            if time.monotonic() > deadline:
                raise GraphFailure(
                    f"/control/enable refused for {ENABLE_TIMEOUT} s: {reply.message}"
                )
            time.sleep(0.02)


@contextmanager
def running_graph(
    overrides: Mapping[str, Mapping[str, Any]],
    graph_path: str | Path = DEFAULT_GRAPH,
    log_path: str | Path | None = None,
    referee_type: type[Referee] = Referee,
    nodes: Sequence[str] | None = None,
) -> Iterator[tuple[Graph, Referee, str]]:
    """Start the graph's nodes on an isolated DDS domain, wait until they answer, and yield
    (graph, referee, log file name); everything is stopped on exit, whatever happened.
    `referee_type` adds clients for other graphs (e.g. the recording one); `nodes` starts only
    those of the graph's nodes (`bench fuzz`: the arm and the controller, no policy)."""
    env = isolated_ros_env()
    log_file = (
        open(log_path, "w")  # noqa: SIM115 - closed in finally
        if log_path is not None
        else tempfile.NamedTemporaryFile(
            "w", prefix="robot_policy_graph_", suffix=".log", delete=False
        )
    )
    graph = Graph(graph_path, overrides, only=nodes, env=env, log=log_file)
    saved_env = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ.update({k: env[k] for k in saved_env})
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    referee = referee_type(context)
    executor.add_node(referee)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    finished = False
    try:
        graph.start()
        _wait_ready(graph, referee, log_file.name)
        yield graph, referee, log_file.name
        finished = True
    finally:
        # The referee leaves before the nodes do. Fast DDS 3.2 can deadlock a participant whose
        # peers leave while its announcement timer fires (eProsima/Fast-DDS#6502); a node
        # caught so is killed by graph.stop, but this process could never leave.
        executor.shutdown()
        spinner.join(timeout=5.0)  # out of the wait set before the node and context go away
        referee.destroy_node()
        rclpy.try_shutdown(context=context)
        graph.stop()
        log_file.close()
        if log_path is None and finished:
            Path(log_file.name).unlink(missing_ok=True)  # kept only to explain a failure
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def graph_overrides(
    task: str,
    seed: int,
    checkpoint: str | Path | None,
    strategy: str,
    inference_steps: int,
    sim_config: str | Path | None,
    backend: str = "robot_policy",
) -> dict[str, dict[str, Any]]:
    """Node parameters for one evaluation, on top of the graph file's. A strategy the graph
    cannot run is refused here, before any node starts (`runtime.strategies`)."""
    chosen = check_ros(strategy)
    overrides: dict[str, dict[str, Any]] = {
        "sim_node": {"task": task, "seed": seed},
        "policy_node": {"inference_steps": inference_steps, "backend": backend},
        "control_node": {"scheduler.strategy": chosen.stitching},
    }
    policy_cfg = policy_spec(checkpoint, backend)
    if policy_cfg.camera_keys:  # an image policy: sim_node renders what it was trained on
        overrides["sim_node"]["cameras"] = [
            k.removeprefix(IMAGE_PREFIX) for k in policy_cfg.camera_keys
        ]
    if checkpoint is not None:
        overrides["policy_node"]["checkpoint"] = str(Path(checkpoint).resolve())
    if chosen.replan_every_step:  # every chunk covers the next step: re-plan at the action rate
        overrides["policy_node"]["replan_period"] = 1.0 / policy_cfg.fps
    if sim_config is not None:
        overrides["sim_node"]["sim_config"] = str(Path(sim_config).resolve())
    return overrides


def stall_witness(
    overrides: Mapping[str, Mapping[str, Any]], graph_path: str | Path = DEFAULT_GRAPH
) -> StallWitness:
    """A witness at the priority control_node's loop runs at in this graph."""
    params = effective_parameters(graph_path, overrides)["control_node"]
    return StallWitness(int(params["thread_priority"]["value"]))


def loop_report(control: Mapping[str, Any], stalls: list[Stall]) -> dict[str, Any]:
    """control_node's loop figures with its misses split: its own, and those during a stall
    of the machine (the node reports its recent misses' times, on the shared monotonic clock).
    The per-chunk list the camera figure is joined from (`bench ros`) is not a figure: dropped.
    """
    loop = dict(control.get("loop", {}))
    misses = loop.pop("miss_times", [])
    loop.pop("first_commands", None)
    own = sum(not overlaps(stalls, begin, end) for begin, end in misses)
    return {
        **loop,
        "own_deadline_misses": own,
        "misses_in_machine_stalls": len(misses) - own,
        "machine_stalls": len(stalls),
    }


def run_episode(
    graph: Graph, referee: Referee, log: str, first: bool, limit: float
) -> float | None:
    """One episode: stop commanding, reset the sim (not for the first, which the sim_node
    started itself), clear the policy's history, resume; seconds to success or None."""
    referee.call(referee.enable_control, SetBool.Request(data=False))
    if not first:
        referee.call(referee.reset_sim, Trigger.Request())
    referee.call(referee.restart_policy, Trigger.Request())
    referee.enable()
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < limit:
        check_alive(graph, log)
        if referee.call(referee.success, Trigger.Request()).success:
            return elapsed
        time.sleep(0.05)
    return None


def evaluate_ros(
    task: str,
    episodes: int,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    strategy: str = "receding",
    inference_steps: int = 0,
    graph_path: str | Path = DEFAULT_GRAPH,
    sim_config: str | Path | None = None,
    progress: bool = True,
    log_path: str | Path | None = None,
    backend: str = "robot_policy",
) -> RosEvalResult:
    """Run `episodes` episodes through the ROS graph; node output goes to `log_path` (a temp
    file by default, named in any error). `backend` lerobot: `checkpoint` is a LeRobot policy."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    overrides = graph_overrides(
        task, seed, checkpoint, strategy, inference_steps, sim_config, backend
    )
    limit = (SimConfig.from_yaml(sim_config) if sim_config else SimConfig()).episode_seconds[task]
    outcomes: list[float | None] = []
    with running_graph(overrides, graph_path, log_path) as (graph, referee, log):
        bar = tqdm(range(episodes), desc=f"eval --ros {task}", unit="ep", disable=not progress)
        with stall_witness(overrides, graph_path) as witness:
            for k in bar:
                outcomes.append(run_episode(graph, referee, log, first=k == 0, limit=limit))
                done = sum(s is not None for s in outcomes)
                bar.set_postfix(success=f"{done}/{k + 1}")
            referee.wait_for_status(after=time.monotonic())
            stalls = witness.stalls()
    control = referee.status.get("control_node", {})
    policy = referee.status.get("policy_node", {})
    seconds = [s for s in outcomes if s is not None]
    return RosEvalResult(
        task=task,
        strategy=strategy,
        **success_fields(len(seconds), episodes),
        mean_seconds_to_success=float(np.mean(seconds)) if seconds else None,
        outcomes=outcomes,
        control={
            **loop_report(control, stalls),
            "safety_interventions": control.get("interventions"),
            "holds": control.get("holds"),
            "reasons": control.get("reasons"),
            "chunks": control.get("chunks"),
        },
        policy={
            k: policy.get(k)
            for k in (
                "latency_ms_p50",
                "latency_ms_p99",
                "published",
                "errors",
                "precision",
                "inference_realtime",
            )
        },
    )


def check_alive(graph: Graph, log: str) -> None:
    ended = graph.exited()
    if ended is not None:
        node, code = ended
        raise GraphFailure(f"{node} exited with code {code}; see {log}")


def _wait_ready(graph: Graph, referee: Referee, log: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for client in referee.ready_clients():
        while not client.wait_for_service(timeout_sec=0.2):
            check_alive(graph, log)
            if time.monotonic() > deadline:
                raise GraphFailure(f"{client.srv_name} not available after {STARTUP_TIMEOUT} s")
