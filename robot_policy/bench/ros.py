"""`robot-policy bench ros`: the age of the measured state behind each command, via the graph,
and for an image policy the camera frame's age at the first command computed from it
(`graph.camera_latency`)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from robot_policy.graph.camera_latency import LatencyReferee, camera_to_command_ms
from robot_policy.graph.referee import (
    graph_overrides,
    loop_report,
    run_episode,
    running_graph,
    stall_witness,
)
from robot_policy.sim import SimConfig


def run(
    seconds: float = 30.0,
    task: str = "push",
    seed: int = 0,
    log_path: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> dict[str, float]:
    """`robot-policy bench ros`: the graph runs episodes of the policy (default: the shipped
    one) for `seconds`; the figures are the nodes' own measurements over DDS: how old the
    measured state behind each command is when the command goes out (`obs_to_command`), how
    old a chunk's observation is when the chunk reaches the control node (inference + DDS),
    and for an image policy how old its camera frame is at the chunk's first command."""
    overrides = graph_overrides(task, seed, checkpoint, "receding", 0, None)
    limit = SimConfig().episode_seconds[task]
    episodes = successes = 0
    graph_and_referee = running_graph(overrides, log_path=log_path, referee_type=LatencyReferee)
    with graph_and_referee as (graph, referee, log):
        with stall_witness(overrides) as witness:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                limit_now = min(limit, left)
                took = run_episode(graph, referee, log, first=episodes == 0, limit=limit_now)
                episodes += 1
                successes += took is not None
            referee.wait_for_status(after=time.monotonic())
            stalls = witness.stalls()
    loop = loop_report(referee.status.get("control_node", {}), stalls)
    policy = referee.status.get("policy_node", {})
    rate = loop.get("rate_hz", math.nan)
    camera = camera_to_command_ms(referee.camera_frames, referee.first_commands)
    return {
        "obs_to_command_ms_p50": loop.get("obs_to_command_ms_p50", math.nan),
        "obs_to_command_ms_p99": loop.get("obs_to_command_ms_p99", math.nan),
        "control_period_ms": 1e3 / rate if rate else math.nan,
        "loop_hz": rate,
        "deadline_misses": loop.get("deadline_misses", math.nan),
        "own_deadline_misses": loop["own_deadline_misses"],
        "machine_stalls": loop["machine_stalls"],
        "jitter_ms_p99": loop.get("jitter_ms_p99", math.nan),
        "chunk_age_ms_p50": loop.get("chunk_age_ms_p50", math.nan),
        "chunk_age_ms_p99": loop.get("chunk_age_ms_p99", math.nan),
        "inference_ms_p50": policy.get("latency_ms_p50", math.nan),
        "inference_ms_p99": policy.get("latency_ms_p99", math.nan),
        "camera_to_command_ms_p50": float(np.percentile(camera, 50)) if camera else math.nan,
        "camera_to_command_ms_p99": float(np.percentile(camera, 99)) if camera else math.nan,
        "camera_chunks": len(camera),
        "episodes": episodes,
        "successes": successes,
        "seconds": seconds,
    }
