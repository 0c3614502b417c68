"""Per-episode feature statistics and their exact combination, in LeRobot's stats layout.

Every feature gets `min`, `max`, `mean`, `std` (population) and `count` (frames). Numeric
features have per-dimension arrays of shape (D,); cameras have per-channel arrays of shape
(3, 1, 1) over pixel values scaled to [0, 1], which broadcast against (C, H, W) images the way
LeRobot's normalizers expect. Combining episodes uses count-weighted means and pooled variance,
so the dataset stats equal those of all frames at once (to float64 rounding), not an estimate.

Quantiles q01, q10, q50, q90, q99, as LeRobot 0.6 writes them (its QUANTILES normalization
reads them, and its tools expect every episode row to carry them): per episode they are exact
(numeric columns by linear interpolation; camera channels from a 256-bin histogram of every
pixel, where LeRobot histograms a sample of frames). Quantiles of a union cannot be recovered
from quantiles of its parts; combining does what the released LeRobot 0.6.1's
`aggregate_feature_stats` does, a count-weighted mean of the parts' quantiles, so a dataset's
stats.json is the one LeRobot computes from the same episode rows (LeRobot's main branch has
since moved to a min/max envelope; `make test-lerobot` pins what is tested). Stats written
before quantiles existed combine without them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Stats = dict[str, np.ndarray]

QUANTILES = (1, 10, 50, 90, 99)  # percent, LeRobot's DEFAULT_QUANTILES
QUANTILE_NAMES = tuple(f"q{q:02d}" for q in QUANTILES)
BASIC_STAT_NAMES = ("min", "max", "mean", "std", "count")
STAT_NAMES = (*BASIC_STAT_NAMES, *QUANTILE_NAMES)  # LeRobot's column order
_CHANNEL_BINS = np.array([0, 256, 512], dtype=np.int64)


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats of a (T,) or (T, D) column; (T,) columns give (1,)-shaped stats like LeRobot."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    stats = {
        "min": data.min(axis=0),
        "max": data.max(axis=0),
        "mean": data.mean(axis=0),
        "std": data.std(axis=0),
        "count": np.array([data.shape[0]], dtype=np.int64),
    }
    levels = np.quantile(data, np.array(QUANTILES) / 100.0, axis=0)
    return stats | dict(zip(QUANTILE_NAMES, levels, strict=True))


class ImageStatsAccumulator:
    """Per-channel stats of uint8 H x W x 3 frames, one frame at a time.

    Frames of a long episode are streamed to the video encoder, never kept, so they are
    counted as they arrive into one 256-bin histogram per channel: every stat, the quantiles
    included, follows from it exactly (8-bit data).
    """

    def __init__(self) -> None:
        self.frames = 0
        self.histogram = np.zeros((3, 256), dtype=np.int64)  # pixel values per channel

    def add(self, image: np.ndarray) -> None:
        # One bincount for the three channels: channel c's values land in bins 256c..256c+255.
        binned = np.bincount((image.reshape(-1, 3) + _CHANNEL_BINS).ravel(), minlength=3 * 256)
        self.histogram += binned.reshape(3, 256)
        self.frames += 1

    def result(self) -> Stats:
        if self.frames == 0:
            raise ValueError("no frames were added")
        hist = self.histogram.astype(np.float64)
        pixels = hist[0].sum()
        levels = np.arange(256, dtype=np.float64)
        mean = hist @ levels / pixels
        var = np.maximum(hist @ (levels * levels) / pixels - mean * mean, 0.0)
        seen = self.histogram > 0
        low = seen.argmax(axis=1)
        high = 255 - seen[:, ::-1].argmax(axis=1)
        as_chw = (3, 1, 1)
        stats = {
            "min": (low / 255.0).reshape(as_chw),
            "max": (high / 255.0).reshape(as_chw),
            "mean": (mean / 255.0).reshape(as_chw),
            "std": (np.sqrt(var) / 255.0).reshape(as_chw),
            "count": np.array([self.frames], dtype=np.int64),
        }
        cumulative = np.cumsum(self.histogram, axis=1)
        for name, q in zip(QUANTILE_NAMES, QUANTILES, strict=True):
            # The smallest pixel value with at least q% of the pixels at or below it.
            rank = np.ceil(q / 100.0 * pixels)
            value = np.array([np.searchsorted(row, rank) for row in cumulative])
            stats[name] = (value / 255.0).reshape(as_chw)
        return stats


def combine(parts: list[Stats]) -> Stats:
    """Stats of the union of the frames the parts describe (pooled and exact but the quantiles)."""
    if not parts:
        raise ValueError("nothing to combine")
    counts = np.array([int(p["count"][0]) for p in parts], dtype=np.float64)
    total = counts.sum()
    weights = (counts / total).reshape((-1,) + (1,) * np.ndim(parts[0]["mean"]))
    means = np.stack([p["mean"] for p in parts])
    variances = np.stack([p["std"] for p in parts]) ** 2
    mean = (weights * means).sum(axis=0)
    var = (weights * (variances + (means - mean) ** 2)).sum(axis=0)
    combined = {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)], dtype=np.int64),
    }
    for name in QUANTILE_NAMES:
        if all(name in p for p in parts):
            combined[name] = (weights * np.stack([p[name] for p in parts])).sum(axis=0)
    return combined


def combine_datasets(parts: list[dict[str, Stats]]) -> dict[str, Stats]:
    """Feature-wise `combine` over several {feature: stats} dicts (a feature may be absent)."""
    keys = list(dict.fromkeys(key for part in parts for key in part))
    return {key: combine([part[key] for part in parts if key in part]) for key in keys}


def to_json(stats: dict[str, Stats]) -> dict[str, dict[str, Any]]:
    return {key: {name: value.tolist() for name, value in ft.items()} for key, ft in stats.items()}


def from_json(data: dict[str, dict[str, Any]]) -> dict[str, Stats]:
    return {key: {name: np.asarray(v) for name, v in ft.items()} for key, ft in data.items()}
