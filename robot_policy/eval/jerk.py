"""Jerk of an executed action stream: overall, and where one chunk hands over to the next.

Chunk switches are where stitching strategies differ (two chunks disagree there), so besides
the mean over the whole stream the jerk is read at the switches themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def jerk_profile(executed: np.ndarray, dt: float) -> np.ndarray:
    """|third difference| / dt³, the largest over action dimensions, for each window of four
    consecutive actions: shape (T - 3,), entry i covering steps i..i+3."""
    x = np.asarray(executed, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"jerk needs at least 4 actions of shape (T,) or (T, A), got {x.shape}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0, got {dt}")
    return np.max(np.abs(np.diff(x, n=3, axis=0)), axis=1) / dt**3


def boundary_jerk(executed: np.ndarray, dt: float) -> float:
    """The largest jerk anywhere in the stream (where a chunk switch would show up)."""
    return float(jerk_profile(executed, dt).max())


class JerkMeter:
    """Collects jerk over episodes: every window, and the windows spanning a chunk switch.

    A switch at step k (the first action taken from a new chunk) lies in the windows that
    contain steps k-1 and k; the largest of them is that switch's jerk.
    """

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self._all: list[np.ndarray] = []
        self._switches: list[float] = []

    def add_episode(self, executed: Sequence[np.ndarray], switches: Sequence[int]) -> None:
        """`switches`: steps where a new chunk took over; episodes under 4 steps are skipped."""
        if len(executed) < 4:
            return
        profile = jerk_profile(np.asarray(executed), self.dt)
        self._all.append(profile)
        for k in switches:
            windows = profile[max(0, k - 3) : max(0, k)]
            if windows.size:
                self._switches.append(float(windows.max()))

    def summary(self) -> dict[str, float]:
        """Mean jerk over all windows, mean and max over switches (NaN where there are none)."""
        every = np.concatenate(self._all) if self._all else np.zeros(0)
        switches = np.asarray(self._switches)
        return {
            "jerk_mean": float(every.mean()) if every.size else math.nan,
            "boundary_jerk_mean": float(switches.mean()) if switches.size else math.nan,
            "boundary_jerk_max": float(switches.max()) if switches.size else math.nan,
        }
