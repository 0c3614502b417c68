"""Observation histories assembled by timestamp, for policies fed by asynchronous streams.

A policy with n_obs_steps = 2 at 10 Hz wants the state now and 0.1 s ago. Over ROS, joint
states, object poses and camera frames arrive on their own schedules, so "the previous
observation" must be looked up by time, not taken as the previous message: each slot gets the
newest sample at or before its time (zero-order hold, what the dataset recorder does too).
Before enough history exists, the oldest sample fills the earlier slots — the same padding
LeRobot and the training windows use at an episode's start.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

# Slack when a sample's stamp lands exactly on a slot time (float round-off in stamps).
_EPS = 1e-6


class ObservationHistory:
    """Time-indexed samples per policy key; `window(t)` gives the stacked history ending at t."""

    def __init__(
        self, keys: Sequence[str], n_obs_steps: int, dt: float, keep_seconds: float = 5.0
    ) -> None:
        if n_obs_steps < 1 or not dt > 0:
            raise ValueError(f"need n_obs_steps >= 1 and dt > 0, got {n_obs_steps}, {dt}")
        self.keys = tuple(keys)
        self.n_obs_steps = n_obs_steps
        self.dt = dt
        self.keep_seconds = max(keep_seconds, 2 * n_obs_steps * dt)
        self._stamps: dict[str, list[float]] = {k: [] for k in self.keys}
        self._values: dict[str, list[np.ndarray]] = {k: [] for k in self.keys}

    def add(self, key: str, stamp: float, value: np.ndarray) -> None:
        """Record a sample; out-of-order samples are inserted in place, old ones pruned."""
        if key not in self._stamps:
            raise KeyError(f"unknown observation key {key!r}; expected one of {self.keys}")
        stamps, values = self._stamps[key], self._values[key]
        i = bisect.bisect_right(stamps, stamp)
        stamps.insert(i, stamp)
        values.insert(i, np.asarray(value))
        cutoff = stamps[-1] - self.keep_seconds
        drop = bisect.bisect_left(stamps, cutoff)
        if drop:
            del stamps[:drop], values[:drop]

    def stamp_at(self, key: str, t: float) -> float | None:
        """Stamp of the sample `window(t)` puts in its newest slot for `key`, or None."""
        stamps = self._stamps[key]
        j = bisect.bisect_right(stamps, t + _EPS) - 1
        return stamps[j] if j >= 0 else None

    def latest(self, key: str) -> float | None:
        """Stamp of the newest sample of `key`, or None."""
        stamps = self._stamps[key]
        return stamps[-1] if stamps else None

    def window(self, t: float) -> dict[str, np.ndarray] | None:
        """Each key's samples at t - (n-1)·dt, ..., t stacked on a new first axis, or None while
        some key has no sample at or before t (e.g. no camera frame yet)."""
        out = {}
        for key in self.keys:
            stamps, values = self._stamps[key], self._values[key]
            if not stamps or stamps[0] > t + _EPS:
                return None
            slots = []
            for i in range(self.n_obs_steps):
                slot_time = t - (self.n_obs_steps - 1 - i) * self.dt
                j = bisect.bisect_right(stamps, slot_time + _EPS) - 1
                slots.append(values[max(j, 0)])
            out[key] = np.stack(slots)
        return out

    def clear(self) -> None:
        for key in self.keys:
            self._stamps[key].clear()
            self._values[key].clear()
