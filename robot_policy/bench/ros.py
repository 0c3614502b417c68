"""`robot-policy bench ros`: the age of the measured state behind each command, via the graph."""

from __future__ import annotations

import math
import time
from pathlib import Path

from robot_policy.graph.referee import (
    graph_overrides,
    loop_report,
    run_episode,
    running_graph,
    stall_witness,
)
from robot_policy.sim import SimConfig


def run(
    seconds: float = 30.0, task: str = "push", seed: int = 0, log_path: str | Path | None = None
) -> dict[str, float]:
    """`robot-policy bench ros`: the graph runs episodes of the shipped policy for `seconds`;
    the figures are the control node's own measurements over DDS: how old the measured state
    behind each command is when the command goes out (`obs_to_command`), and how old a chunk's
    observation is when the chunk reaches the control node (inference + DDS)."""
    overrides = graph_overrides(task, seed, None, "receding", 0, None)
    limit = SimConfig().episode_seconds[task]
    episodes = successes = 0
    with running_graph(overrides, log_path=log_path) as (graph, referee, log):
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
        "episodes": episodes,
        "successes": successes,
        "seconds": seconds,
    }
