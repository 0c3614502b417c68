"""Picture of one episode's action chunks: what the policy predicted against what ran.

Each predicted chunk is drawn over the steps it covers, so overlap disagreements (the jumps a
chunk boundary puts into the motion) are visible at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_policy import figures


@dataclass
class ChunkTrace:
    """Chunks predicted (with the step their first action is for) and actions executed."""

    action_names: Sequence[str]
    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)
    executed: list[np.ndarray] = field(default_factory=list)


def plot_chunks(trace: ChunkTrace, path: str | Path, title: str = "") -> Path:
    plt = figures.pyplot()
    executed = np.asarray(trace.executed)
    dims = executed.shape[1]
    cols = 2
    rows = (dims + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.2 * rows), sharex=True, squeeze=False)
    colors = plt.cm.viridis(np.linspace(0, 1, max(1, len(trace.chunks))))
    for d, ax in enumerate(axes.flat):
        if d >= dims:
            ax.set_visible(False)
            continue
        for (start, chunk), color in zip(trace.chunks, colors, strict=True):
            steps = np.arange(start, start + len(chunk))
            ax.plot(steps, chunk[:, d], color=color, lw=0.8, alpha=0.8)
        ax.plot(np.arange(len(executed)), executed[:, d], color="black", lw=1.6, label="executed")
        ax.set_ylabel(trace.action_names[d] if d < len(trace.action_names) else f"a{d}", fontsize=8)
    axes.flat[0].legend(loc="upper right", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("control step")
    fig.suptitle(title or "predicted chunks (colour, oldest to newest) vs executed actions")
    return figures.save(fig, path)
