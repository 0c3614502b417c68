"""RateLoop on a fake clock: deadlines, overruns, skip-ahead and jitter, with no real sleeping;
and the loop thread's real-time priority."""

import math
import os
import subprocess
import sys

import pytest

from robot_policy.runtime.rate_loop import RateLoop, promote_normal_threads, realtime_priority


class FakeTime:
    """A clock that only moves when the loop sleeps (plus `oversleep`) or the test does work."""

    def __init__(self, start: float = 0.0, oversleep: float = 0.0, sleep_fraction: float = 1.0):
        self.t = start
        self.oversleep = oversleep
        self.sleep_fraction = sleep_fraction  # < 1: sleep() returns early
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds * self.sleep_fraction + self.oversleep


def loop_on(fake: FakeTime, rate_hz: float = 4.0) -> RateLoop:  # 4 Hz: period 0.25, exact
    return RateLoop(rate_hz, clock=fake.clock, sleep=fake.sleep)


def test_absolute_deadlines_do_not_drift():
    fake = FakeTime(start=10.0)
    loop = loop_on(fake)
    scheduled = []
    for _ in range(100):
        scheduled.append(loop.wait())
        fake.t += 0.0625  # work inside the tick
    assert scheduled == [10.0 + k * 0.25 for k in range(100)]
    assert fake.sleeps == [0.1875] * 99
    stats = loop.stats()
    assert stats["ticks"] == 100 and stats["overruns"] == 0 and stats["skipped_ticks"] == 0
    assert stats["jitter_ms_p50"] == 0.0 and stats["jitter_ms_p99"] == 0.0
    assert stats["rate_hz_measured"] == pytest.approx(4.0)


def test_jitter_is_actual_minus_scheduled():
    fake = FakeTime(oversleep=0.002)
    loop = loop_on(fake)
    for _ in range(11):
        loop.wait()
    stats = loop.stats()
    assert stats["jitter_ms_p50"] == pytest.approx(2.0)
    assert stats["jitter_ms_p99"] == pytest.approx(2.0)
    # Oversleep does not accumulate: the last tick starts 2 ms late, not 20 ms.
    assert fake.t == pytest.approx(10 * 0.25 + 0.002)
    assert stats["rate_hz_measured"] == pytest.approx(10 / 2.502)


def test_late_tick_within_a_period_runs_at_once_without_an_overrun():
    fake = FakeTime()
    loop = loop_on(fake)
    loop.wait()
    fake.t = 0.375  # deadline 0.25 missed by half a period
    assert loop.wait() == 0.25
    assert fake.sleeps == []
    assert loop.wait() == 0.5  # the schedule keeps its grid
    assert fake.sleeps == [0.125]
    stats = loop.stats()
    assert stats["overruns"] == 0
    assert stats["jitter_ms_p99"] == pytest.approx(125.0, rel=0.02)


def test_overrun_skips_to_the_next_future_deadline_instead_of_bursting():
    fake = FakeTime()
    loop = loop_on(fake)
    loop.wait()
    fake.t = 0.875  # ticks at 0.25, 0.5 and 0.75 are gone
    assert loop.wait() == 1.0
    assert fake.sleeps == [0.125]
    assert loop.wait() == 1.25
    stats = loop.stats()
    assert stats["overruns"] == 1 and stats["skipped_ticks"] == 3 and stats["ticks"] == 3
    assert loop.misses() == [(0.25, 0.875)]  # the missed deadline and the late wake-up


def test_early_wake_sleeps_again_until_the_deadline():
    fake = FakeTime(sleep_fraction=0.5)
    loop = loop_on(fake)
    loop.wait()
    assert loop.wait() == 0.25
    assert fake.t >= 0.25
    assert len(fake.sleeps) > 1


def test_stats_before_a_second_tick_and_invalid_rates():
    loop = loop_on(FakeTime())
    stats = loop.stats()
    assert stats["ticks"] == 0 and math.isnan(stats["jitter_ms_p50"])
    assert math.isnan(stats["rate_hz_measured"])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="rate_hz"):
            RateLoop(bad)


def _policy() -> tuple[int, int]:
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(0).sched_priority


def test_realtime_priority_runs_the_block_on_fifo_or_says_why_not_and_restores():
    before = _policy()
    with realtime_priority(50) as not_realtime:
        inside = _policy()
    if not_realtime is None:
        assert inside == (os.SCHED_FIFO, 50)
    else:  # no CAP_SYS_NICE here: the block ran as before and the reason names the priority
        assert inside == before and "50" in not_realtime
    assert _policy() == before


def test_realtime_priority_zero_leaves_scheduling_alone_and_rejects_out_of_range():
    before = _policy()
    with realtime_priority(0) as not_realtime:
        assert _policy() == before and "normal" in not_realtime
    with pytest.raises(ValueError, match="1..99"), realtime_priority(100):
        pass


PROMOTE = """
import os, threading
from robot_policy.runtime.rate_loop import enter_realtime, promote_normal_threads
release = threading.Event()
started = threading.Barrier(2)
def idle():
    started.wait()
    release.wait()
worker = threading.Thread(target=idle)
worker.start()
started.wait()
os.sched_setscheduler(worker.native_id, os.SCHED_BATCH, os.sched_param(0))  # as a batch job's
if enter_realtime(30) is not None:
    print("refused")
else:
    moved = promote_normal_threads(29)
    policy = os.sched_getscheduler(worker.native_id) & ~os.SCHED_RESET_ON_FORK
    print(moved, policy == os.SCHED_FIFO, os.sched_getparam(worker.native_id).sched_priority,
          os.sched_getparam(0).sched_priority, promote_normal_threads(29))
release.set()
worker.join()
"""


def test_normal_threads_are_promoted_below_the_caller_and_fifo_ones_left_alone():
    # In a child: promoting the test process's own threads would outlive the test.
    out = subprocess.run(
        [sys.executable, "-c", PROMOTE], capture_output=True, text=True, check=True
    ).stdout.split()
    if out == ["refused"]:
        pytest.skip("SCHED_FIFO is refused here (no CAP_SYS_NICE or rtprio)")
    moved, fifo, worker, main, again = out
    assert int(moved) >= 1 and fifo == "True" and worker == "29"
    assert main == "30"  # the caller, already FIFO, keeps its own priority
    assert again == "0"  # nothing left on normal scheduling
    assert promote_normal_threads(0) == promote_normal_threads(100) == 0  # out of range
