"""A fixed-rate loop on a monotonic clock, for the control side of the runtime.

Deadlines are absolute (`start + k*period`), never "now + period": sleeping a relative period
after each tick accumulates the work time and the sleep overshoot, so a 100 Hz loop drifts to
95 Hz. The loop knows nothing about inference; it only paces whoever calls `wait()`, which is
why a slow policy can never stall the control tick.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from robot_policy.recent import RecentWindow
from robot_policy.threads import REALTIME, scheduling, thread_ids

# Enough ticks for stable p99 figures (100 s at 100 Hz) without growing for the whole run.
_HISTORY = 10_000
_MISS_HISTORY = 1_000  # overruns kept with their times, for telling them from machine stalls


def enter_realtime(priority: int) -> str | None:
    """Put the calling thread on SCHED_FIFO at `priority` (1-99; 0: leave it) for good.

    Returns None when it runs at that priority, else why it does not (it keeps its normal
    priority then; the caller reports the reason). On a shared machine a loop's misses come
    from other runnable threads, not from its own work; a FIFO thread runs ahead of all of them
    as soon as it wakes (ros2_control's controller_manager does the same for its update
    thread, `thread_priority` 50). It needs CAP_SYS_NICE or an rtprio limit.
    SCHED_RESET_ON_FORK keeps children (a spawned inference or simulator process) from
    inheriting the priority. The thread sleeps most of each period, and the kernel's RT
    throttling reserves CPU for everyone else, so a FIFO thread cannot starve the machine.
    """
    if not 0 <= priority <= 99:
        raise ValueError(f"a SCHED_FIFO priority is 1..99 (0: off), got {priority}")
    if priority == 0:
        return "thread priority 0: normal scheduling"
    if not hasattr(os, "SCHED_FIFO"):
        return "SCHED_FIFO is not available on this platform"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as exc:
        return f"SCHED_FIFO {priority} refused: {exc.strerror} (needs CAP_SYS_NICE or rtprio)"
    return None


def promote_normal_threads(priority: int) -> int:
    """Every thread of this process not on a realtime policy (SCHED_OTHER, BATCH or IDLE) to
    SCHED_FIFO `priority`; how many were moved (0 where Linux's /proc/self/task is missing
    or the change is refused).

    A middleware delivers messages on threads of its own, created at normal priority (they
    do not inherit a FIFO creator's: `enter_realtime` sets SCHED_RESET_ON_FORK). Beside a busy
    desktop they ran late and then delivered commands in bunches, and a trajectory controller
    given a bunch follows the newest point within one period: faster than commanded (bench
    fuzz under load: up to 4.8x the hardware's joint speed; none above 0.87x with them raised).
    Threads started later keep their own scheduling.
    """
    if not (1 <= priority <= 99 and hasattr(os, "SCHED_FIFO")):
        return 0
    moved = 0
    for tid in thread_ids():
        now = scheduling(tid)
        if now is None or now[0] in REALTIME:
            continue
        try:
            policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
            os.sched_setscheduler(tid, policy, os.sched_param(priority))
            moved += 1
        except OSError:  # the thread ended meanwhile, or the change is refused
            continue
    return moved


@contextmanager
def realtime_priority(priority: int) -> Iterator[str | None]:
    """`enter_realtime` for the block only: the thread's scheduling is restored after it."""
    before = (os.sched_getscheduler(0), os.sched_getparam(0)) if hasattr(os, "SCHED_FIFO") else None
    not_realtime = enter_realtime(priority)
    try:
        yield not_realtime
    finally:
        if not_realtime is None and before is not None:
            os.sched_setscheduler(0, *before)


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
        self._jitter = RecentWindow(_HISTORY)  # wake-up lateness, s
        self._misses: deque[tuple[float, float]] = deque(maxlen=_MISS_HISTORY)

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
            self._misses.append((self._deadline(k), now))
            self._skipped += skip_to - k
            k = skip_to
        scheduled = self._deadline(k)
        while (remaining := scheduled - self._clock()) > 0:
            self._sleep(remaining)  # a sleep may return early; re-check against the clock
        actual = self._clock()
        self._k = k
        self._ticks += 1
        self._last_actual = actual
        self._jitter.add(actual - scheduled)
        return scheduled

    def stats(self) -> dict[str, float | int]:
        """Tick count, overruns (and ticks they skipped), jitter percentiles, achieved rate.

        Jitter is actual minus scheduled start of a tick, over the recent ticks after the
        first; percentiles are NaN until there is a second tick to measure.
        """
        span = self._last_actual - self._first_actual
        return {
            "ticks": self._ticks,
            "overruns": self._overruns,
            "skipped_ticks": self._skipped,
            "jitter_ms_p50": self._jitter.percentile(50, 1e3),
            "jitter_ms_p99": self._jitter.percentile(99, 1e3),
            "rate_hz_measured": (self._ticks - 1) / span if span > 0 else math.nan,
        }

    def misses(self) -> list[tuple[float, float]]:
        """The recent overruns as (missed deadline, late wake-up) on the loop's clock (for
        the default clock, the machine's CLOCK_MONOTONIC, which `StallWitness` shares)."""
        return list(self._misses)

    def _deadline(self, k: int) -> float:
        assert self._start is not None
        return self._start + k * self.period
