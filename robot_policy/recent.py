"""Percentiles over a recent window of samples: every latency, jitter and age figure the nodes,
workers and loops report is computed here, one way.

A window, not the whole run: a p99 over hours hides the stall that started a minute ago; and
NaN before the first sample, so "no data" never reads as "0 ms".
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

# About a minute of camera frames at 30 fps or 20 s of control ticks at 100 Hz: enough for a
# stable p99, small enough to track changes.
WINDOW = 2048


class RecentWindow:
    """The last `window` samples; `count` is every sample ever added."""

    def __init__(self, window: int = WINDOW) -> None:
        self._values: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value: float) -> None:
        self._values.append(value)
        self.count += 1

    def values(self) -> list[float]:
        """The window, oldest first (a copy: safe to read while another thread adds)."""
        return list(self._values)

    def percentile(self, q: float, scale: float = 1.0) -> float:
        """The q-th percentile of the window times `scale` (e.g. 1e3 for s -> ms)."""
        values = self.values()
        return float(np.percentile(values, q)) * scale if values else math.nan
