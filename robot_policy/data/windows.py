"""Training samples: short stacks of observations and action chunks around each frame.

Every frame of the dataset is a sample (as in LeRobot). Offsets reaching outside the sample's
episode are clamped to its first/last frame and flagged in `<key>_is_pad`, LeRobot's
delta-timestamp behaviour, so a policy can mask the padded steps out of its loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reader import LeRobotDataset

# LeRobot's default tolerance between a requested timestamp and a frame's.
TOLERANCE_S = 1e-4


class WindowDataset:
    """A torch-style Dataset of windows over a `LeRobotDataset` (no torch import needed).

    Either `n_obs_steps`/`horizon` with Diffusion Policy's convention - observations at steps
    -(n_obs_steps-1)..0 and actions at -(n_obs_steps-1)..horizon-n_obs_steps relative to the
    sample's frame - or LeRobot's `delta_timestamps` ({key: [seconds, ...]}, multiples of 1/fps).
    `win[i]` is a dict of numpy arrays: each key stacked over its offsets (cameras as uint8
    (n, H, W, 3)), `<key>_is_pad` bool masks, and the sample's `index`, `episode_index` and
    `task_index`. Picklable, so a DataLoader can fan it out to workers.
    """

    def __init__(
        self,
        dataset: LeRobotDataset,
        n_obs_steps: int | None = None,
        horizon: int | None = None,
        *,
        delta_timestamps: dict[str, list[float]] | None = None,
        obs_keys: list[str] | None = None,
        action_key: str = "action",
    ):
        self.dataset = dataset
        if delta_timestamps is not None:
            if n_obs_steps is not None or horizon is not None:
                raise ValueError("give either delta_timestamps or n_obs_steps/horizon, not both")
            self.delta_indices = _delta_indices(delta_timestamps, dataset.fps)
        else:
            if n_obs_steps is None or horizon is None:
                raise ValueError("give n_obs_steps and horizon, or delta_timestamps")
            if n_obs_steps < 1 or horizon < n_obs_steps:
                raise ValueError(f"need 1 <= n_obs_steps <= horizon, got {n_obs_steps}, {horizon}")
            if obs_keys is None:
                obs_keys = [k for k in dataset.features if k.startswith("observation.")]
            first = -(n_obs_steps - 1)
            self.delta_indices = {key: np.arange(first, 1) for key in obs_keys}
            self.delta_indices[action_key] = np.arange(first, horizon - n_obs_steps + 1)
        unknown = [k for k in self.delta_indices if k not in dataset.features]
        if unknown:
            raise ValueError(f"keys {unknown} are not features of the dataset")

    def __len__(self) -> int:
        return self.dataset.num_frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        ds = self.dataset
        if not 0 <= index < ds.num_frames:
            raise IndexError(f"sample {index} out of range for {ds.num_frames} frames")
        episode = ds.episode_of(index)
        start, end = ds.episode_bounds(episode)
        sample: dict[str, Any] = {}
        for key, deltas in self.delta_indices.items():
            wanted = index + deltas
            clamped = np.clip(wanted, start, end - 1)
            if key in ds.camera_keys:
                sample[key] = ds.frames(key, clamped)
            else:
                sample[key] = ds.column(key)[clamped]
            sample[f"{key}_is_pad"] = (wanted < start) | (wanted >= end)
        sample["index"] = np.int64(index)
        sample["episode_index"] = np.int64(episode)
        sample["task_index"] = ds.column("task_index")[index]
        return sample


def _delta_indices(delta_timestamps: dict[str, list[float]], fps: int) -> dict[str, np.ndarray]:
    """Seconds to frame offsets; each must sit on a frame (within TOLERANCE_S)."""
    out = {}
    for key, seconds in delta_timestamps.items():
        steps = np.asarray(seconds, dtype=np.float64) * fps
        off = np.abs(steps - np.round(steps)) / fps > TOLERANCE_S
        if off.any():
            bad = np.asarray(seconds)[off].tolist()
            raise ValueError(f"delta_timestamps[{key!r}] {bad} are not multiples of 1/{fps} s")
        out[key] = np.round(steps).astype(np.int64)
    return out
