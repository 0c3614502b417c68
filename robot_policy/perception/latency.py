"""Per-frame latency over a recent window: what an operator needs to see a camera pipeline stall.

A window, not the whole run: a p99 over hours hides the stall that started a minute ago.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

# About a minute of frames at 30 fps: enough for a stable p99, small enough to track changes.
WINDOW = 2048


class LatencyWindow:
    """Durations in milliseconds; `count` is every sample ever added, the percentiles the window."""

    def __init__(self, window: int = WINDOW) -> None:
        self._ms: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, milliseconds: float) -> None:
        self._ms.append(milliseconds)
        self.count += 1

    def percentile(self, q: float) -> float:
        """NaN before the first sample, so "no data" never reads as "0 ms"."""
        return float(np.percentile(self._ms, q)) if self._ms else math.nan
