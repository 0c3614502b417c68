"""A fixed-rate loop on a monotonic clock, for the control side of the runtime.

Deadlines are absolute (`start + k*period`), never "now + period": sleeping a relative period
after each tick accumulates the work time and the sleep overshoot, so a 100 Hz loop drifts to
95 Hz. The loop knows nothing about inference; it only paces whoever calls `wait()`, which is
why a slow policy can never stall the control tick.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import numpy as np

# Enough ticks for stable p99 figures (100 s at 100 Hz) without growing for the whole run.
_HISTORY = 10_000


class RateLoop:
    """Paces a loop at `rate_hz`: `t = loop.wait()` at the top of each iteration.

    A tick that starts more than one period after its deadline is an overrun: the loop skips to
    the next deadline still in the future instead of running the missed ticks back to back,
    because a burst of stale control ticks is worse for an arm than a gap. `clock` and `sleep`
    are injectable so tests can drive the loop deterministically.
    """

    def __init__(
        self,
        rate_hz: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._k = 0  # index of the tick last returned
        self._ticks = 0
        self._overruns = 0
        self._skipped = 0
        self._first_actual = 0.0
        self._last_actual = 0.0
        self._jitter: deque[float] = deque(maxlen=_HISTORY)

    def wait(self) -> float:
        """Block until the next tick is due; return its scheduled time.

        The first call starts the schedule at the current time and returns at once. Callers
        should act on the returned scheduled time, not on a fresh clock reading, so that
        chunk lookups stay on the grid even when the tick itself was a little late.
        """
        now = self._clock()
        if self._start is None:
            self._start = self._first_actual = self._last_actual = now
            self._ticks = 1
            return now
        k = self._k + 1
        if now > self._deadline(k) + self.period:
            # Smallest k whose deadline is not yet past; the ticks in between are dropped.
            skip_to = math.ceil((now - self._start) / self.period)
            self._overruns += 1
            self._skipped += skip_to - k
            k = skip_to
        scheduled = self._deadline(k)
        while (remaining := scheduled - self._clock()) > 0:
            self._sleep(remaining)  # a sleep may return early; re-check against the clock
        actual = self._clock()
        self._k = k
        self._ticks += 1
        self._last_actual = actual
        self._jitter.append(actual - scheduled)
        return scheduled

    def stats(self) -> dict[str, float | int]:
        """Tick count, overruns (and ticks they skipped), jitter percentiles, achieved rate.

        Jitter is actual minus scheduled start of a tick, over the recent ticks after the
        first; percentiles are NaN until there is a second tick to measure.
        """
        jitter_ms = np.asarray(self._jitter) * 1e3
        span = self._last_actual - self._first_actual
        return {
            "ticks": self._ticks,
            "overruns": self._overruns,
            "skipped_ticks": self._skipped,
            "jitter_ms_p50": float(np.percentile(jitter_ms, 50)) if jitter_ms.size else math.nan,
            "jitter_ms_p99": float(np.percentile(jitter_ms, 99)) if jitter_ms.size else math.nan,
            "rate_hz_measured": (self._ticks - 1) / span if span > 0 else math.nan,
        }

    def _deadline(self, k: int) -> float:
        assert self._start is not None
        return self._start + k * self.period
