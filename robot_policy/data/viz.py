"""PNG plots of one episode: joint trajectories against actions, other numeric features, and
camera frames, for checking a recording by eye (a robot or CI box has no display).

State and action are drawn on shared axes, one panel per joint, when they have the same size:
that shows at a glance whether the arm followed its commands and with what lag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robot_policy import figures

from .layout import DEFAULT_FEATURES
from .reader import LeRobotDataset

STATE, ACTION = "observation.state", "action"


def plot_episode(
    root: str | Path, episode: int, out: str | Path, *, frames: int = 8
) -> dict[str, Any]:
    """Write the plots of `episode` into folder `out`; returns the episode summary and paths."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    ds = LeRobotDataset(root, frame_cache_size=0)
    if not 0 <= episode < ds.num_episodes:
        raise ValueError(
            f"episode {episode} does not exist in {ds.root} (it has 0..{ds.num_episodes - 1})"
        )
    out = Path(out)
    start, end = ds.episode_bounds(episode)
    t = ds.column("timestamp")[start:end]
    numeric = [k for k in ds.features if k not in ds.camera_keys and k not in DEFAULT_FEATURES]
    values = {key: ds.column(key)[start:end] for key in numeric}
    prefix = f"episode_{episode:06d}"
    written = []
    paired = STATE in values and ACTION in values and values[STATE].shape == values[ACTION].shape
    if paired:
        names = dimension_names(ds, STATE)
        path = out / f"{prefix}_state_action.png"
        written.append(_plot_series(path, t, {STATE: values[STATE], ACTION: values[ACTION]}, names))
    for key in numeric:
        if paired and key in (STATE, ACTION):
            continue
        path = out / f"{prefix}_{key}.png"
        written.append(_plot_series(path, t, {key: values[key]}, dimension_names(ds, key)))
    for key in ds.camera_keys:
        picks = np.unique(np.linspace(start, end - 1, min(frames, end - start)).round().astype(int))
        images = ds.frames(key, picks)
        path = out / f"{prefix}_{key}.png"
        written.append(_plot_frames(path, images, ds.column("timestamp")[picks], key))
    return {
        "dataset": str(ds.root),
        "episode": episode,
        "frames": end - start,
        "task": ds.tasks[int(ds.column("task_index")[start])],
        "plots": [str(p) for p in written],
    }


def dimension_names(ds: LeRobotDataset, key: str) -> list[str]:
    """A numeric feature's per-dimension names (its `names`, else `key[i]`)."""
    names = ds.features[key].get("names")
    size = ds.features[key]["shape"][0]
    return (
        list(names)
        if isinstance(names, list) and len(names) == size
        else [f"{key}[{i}]" for i in range(size)]
    )


def _plot_series(
    path: Path, t: np.ndarray, series: dict[str, np.ndarray], names: list[str]
) -> Path:
    plt = figures.pyplot()
    dims = len(names)
    cols = min(dims, 4)
    rows = -(-dims // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= dims:
            ax.axis("off")
            continue
        for (label, data), style in zip(series.items(), ("-", "--"), strict=False):
            ax.plot(t, data[:, i], style, label=label, linewidth=1.2)
        ax.set_title(names[i], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("time (s)", fontsize=9)
    return figures.save(fig, path)


def _plot_frames(path: Path, images: np.ndarray, times: np.ndarray, key: str) -> Path:
    plt = figures.pyplot()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(2.0 * n, 2.3), squeeze=False)
    for ax, image, when in zip(axes.flat, images, times, strict=True):
        ax.imshow(image)
        ax.set_title(f"t={when:.1f} s", fontsize=8)
        ax.axis("off")
    fig.suptitle(key, fontsize=9)
    return figures.save(fig, path)
