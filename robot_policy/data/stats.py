"""Per-episode feature statistics and their exact combination, in LeRobot's stats layout.

Every feature gets `min`, `max`, `mean`, `std` (population) and `count` (frames). Numeric
features have per-dimension arrays of shape (D,); cameras have per-channel arrays of shape
(3, 1, 1) over pixel values scaled to [0, 1], which broadcast against (C, H, W) images the way
LeRobot's normalizers expect. Combining episodes uses count-weighted means and pooled variance,
so the dataset stats equal those of all frames at once (to float64 rounding), not an estimate.
LeRobot also stores approximate quantiles (q01..q99); they cannot be combined exactly from
per-episode summaries and are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Stats = dict[str, np.ndarray]


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats of a (T,) or (T, D) column; (T,) columns give (1,)-shaped stats like LeRobot."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    return {
        "min": data.min(axis=0),
        "max": data.max(axis=0),
        "mean": data.mean(axis=0),
        "std": data.std(axis=0),
        "count": np.array([data.shape[0]], dtype=np.int64),
    }


class ImageStatsAccumulator:
    """Per-channel stats of uint8 H x W x 3 frames, one frame at a time.

    Frames of a long episode are streamed to the video encoder, never kept, so their stats are
    accumulated as they arrive (sum and sum of squares in float64: exact for 8-bit data).
    """

    def __init__(self) -> None:
        self.frames = 0
        self.pixels = 0
        self.total = np.zeros(3, dtype=np.float64)
        self.total_sq = np.zeros(3, dtype=np.float64)
        self.low = np.full(3, 255, dtype=np.int64)
        self.high = np.zeros(3, dtype=np.int64)

    def add(self, image: np.ndarray) -> None:
        flat = image.reshape(-1, 3)
        wide = flat.astype(np.int64)
        self.total += wide.sum(axis=0)
        self.total_sq += (wide * wide).sum(axis=0)
        self.low = np.minimum(self.low, flat.min(axis=0))
        self.high = np.maximum(self.high, flat.max(axis=0))
        self.pixels += flat.shape[0]
        self.frames += 1

    def result(self) -> Stats:
        if self.frames == 0:
            raise ValueError("no frames were added")
        mean = self.total / self.pixels
        var = np.maximum(self.total_sq / self.pixels - mean * mean, 0.0)
        as_chw = (3, 1, 1)
        return {
            "min": (self.low / 255.0).reshape(as_chw),
            "max": (self.high / 255.0).reshape(as_chw),
            "mean": (mean / 255.0).reshape(as_chw),
            "std": (np.sqrt(var) / 255.0).reshape(as_chw),
            "count": np.array([self.frames], dtype=np.int64),
        }


def combine(parts: list[Stats]) -> Stats:
    """Stats of the union of the frames the parts describe (pooled; exact)."""
    if not parts:
        raise ValueError("nothing to combine")
    counts = np.array([int(p["count"][0]) for p in parts], dtype=np.float64)
    total = counts.sum()
    weights = (counts / total).reshape((-1,) + (1,) * np.ndim(parts[0]["mean"]))
    means = np.stack([p["mean"] for p in parts])
    variances = np.stack([p["std"] for p in parts]) ** 2
    mean = (weights * means).sum(axis=0)
    var = (weights * (variances + (means - mean) ** 2)).sum(axis=0)
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)], dtype=np.int64),
    }


def combine_datasets(parts: list[dict[str, Stats]]) -> dict[str, Stats]:
    """Feature-wise `combine` over several {feature: stats} dicts (a feature may be absent)."""
    keys = list(dict.fromkeys(key for part in parts for key in part))
    return {key: combine([part[key] for part in parts if key in part]) for key in keys}


def to_json(stats: dict[str, Stats]) -> dict[str, dict[str, Any]]:
    return {key: {name: value.tolist() for name, value in ft.items()} for key, ft in stats.items()}


def from_json(data: dict[str, dict[str, Any]]) -> dict[str, Stats]:
    return {key: {name: np.asarray(v) for name, v in ft.items()} for key, ft in data.items()}
