"""Chunk-boundary smoothness per stitching strategy, for `robot-policy bench inference`.

A short seeded rollout per strategy and latency, with the safety filter bypassed: the filter
limits jerk itself, so behind it every strategy would look alike and the figure would measure
the filter rather than the stitching. Receding horizon is the "no stitching" baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

from robot_policy.eval.evaluate import evaluate
from robot_policy.policies import ChunkPolicy
from robot_policy.runtime.strategies import strategies_for


def boundary_smoothness(
    policy: ChunkPolicy,
    task: str = "push",
    episodes: int = 3,
    latencies_ms: Sequence[float] = (0.0, 200.0),
    seed: int = 100000,
) -> dict[str, float | int | str]:
    """Flat figures `jerk_<strategy>_<latency>ms_{mean,boundary_mean,boundary_max}` (rad/s³)."""
    figures: dict[str, float | int | str] = {
        "smoothness_task": task,
        "smoothness_episodes": episodes,
    }
    for strategy in strategies_for(policy.config):
        for latency in latencies_ms:
            result = evaluate(
                policy, task, episodes, seed=seed, strategy=strategy, latency_ms=latency,
                safety=False, progress=False,
            )  # fmt: skip
            key = f"jerk_{strategy}_{latency:g}ms"
            figures[f"{key}_mean"] = result.jerk_mean
            figures[f"{key}_boundary_mean"] = result.boundary_jerk_mean
            figures[f"{key}_boundary_max"] = result.boundary_jerk_max
    return figures
