"""Success against inference latency, per chunk-execution strategy: the table and plot that
show whether a strategy keeps a slow policy working."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robot_policy import figures
from robot_policy.eval.evaluate import evaluate
from robot_policy.policies import ChunkPolicy


def sweep(
    policy: ChunkPolicy,
    task: str,
    latencies_ms: Sequence[float],
    strategies: Sequence[str],
    episodes: int,
    seed: int = 100000,
    progress: bool = True,
) -> list[dict]:
    """One evaluation per (strategy, latency), all on the same seeds."""
    return [
        evaluate(
            policy, task, episodes, seed=seed, strategy=strategy, latency_ms=latency,
            progress=progress,
        ).as_dict()
        for strategy in strategies
        for latency in latencies_ms
    ]  # fmt: skip


def plot_sweep(rows: Sequence[dict], path: str | Path, title: str = "") -> Path:
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        own = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["latency_ms"])
        x = [r["latency_ms"] for r in own]
        y = [r["success_rate"] for r in own]
        low = [r["success_rate"] - r["ci95_low"] for r in own]
        high = [r["ci95_high"] - r["success_rate"] for r in own]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=strategy)
    ax.set_xlabel("inference latency (ms)")
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "success vs latency")
    return figures.save(fig, path)
