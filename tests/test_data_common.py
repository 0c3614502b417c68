"""Synthetic episodes shared by the data tests (no sim): deterministic per (episode, frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_policy.data import DatasetWriter

HEIGHT, WIDTH = 64, 96
FPS = 10
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [8], "names": [f"q{i}" for i in range(8)]},
    "observation.environment_state": {"dtype": "float32", "shape": [3], "names": None},
    "observation.images.front": {
        "dtype": "image",
        "shape": [HEIGHT, WIDTH, 3],
        "names": ["height", "width", "channels"],
    },
    "action": {"dtype": "float32", "shape": [8], "names": None},
}
CAMERA = "observation.images.front"
TASKS = ("push the cube to the green target", "reach the red ball")


def image(episode: int, t: int) -> np.ndarray:
    """A smooth moving gradient: compresses well, so lossy error stays small and checkable."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    phase = 0.15 * t + 0.9 * episode
    r = 128 + 100 * np.sin(x / 15 + phase)
    g = 128 + 100 * np.cos(y / 11 - phase)
    b = 128 + 60 * np.sin((x + y) / 20 + 0.5 * phase)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


def frame(episode: int, t: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 * episode + t)
    return {
        "observation.state": rng.normal(size=8).astype(np.float32),
        "observation.environment_state": rng.normal(size=3).astype(np.float32),
        CAMERA: image(episode, t),
        "action": rng.normal(size=8).astype(np.float32),
    }


def task_of(episode: int) -> str:
    return TASKS[episode % 2]


def record(writer: DatasetWriter, episode: int, length: int) -> int:
    """Record synthetic episode number `episode` (its content seed) and save it."""
    for t in range(length):
        writer.add_frame(frame(episode, t), task=task_of(episode))
    return writer.save_episode()


def write_dataset(
    root: Path, lengths: list[int], codec: str = "libx264", first_seed: int = 0, **kwargs
) -> None:
    with DatasetWriter(root, fps=FPS, features=FEATURES, video_codec=codec, **kwargs) as w:
        for i, length in enumerate(lengths):
            record(w, first_seed + i, length)
