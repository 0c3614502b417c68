"""Telling a control loop's own lateness from the machine's.

A loop thread at SCHED_FIFO can only wake tens of milliseconds late if the whole machine stops
running it: a virtual machine whose host deschedules its vCPUs, or the kernel holding every
CPU. No setting in the loop fixes that, and a benchmark that counts those misses as the loop's
says nothing about the loop. So a witness — a second thread of the same priority, in its own
process, waking every 2 ms — notes every wake-up it got late. A loop miss that overlaps one of
the witness's late stretches happened while nothing on the machine could run; the rest are the
loop's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from robot_policy.runtime.child import ChildServer
from robot_policy.runtime.rate_loop import realtime_priority

Stall = tuple[float, float]  # (monotonic start, seconds) of a stretch the witness could not run


class StallWitness:
    """`with StallWitness(priority) as witness: ...; stalls = witness.stalls()`.

    `priority`: the loop's SCHED_FIFO priority (0: normal scheduling, a weaker witness).
    `threshold`: lateness that counts as a stall; a FIFO sleeper's own wake-up noise is well
    under a millisecond.
    """

    def __init__(self, priority: int, *, period: float = 0.002, threshold: float = 0.004) -> None:
        self._child = ChildServer("stall-witness", _setup, priority, period, threshold)
        self.not_realtime: str | None = None

    def __enter__(self) -> StallWitness:
        self.not_realtime = self._child.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._child.stop()

    def stalls(self) -> list[Stall]:
        """Stop watching; the stalls seen since the start, oldest first."""
        self._child.send("stop")
        return self._child.recv()


def overlaps(stalls: Sequence[Stall], begin: float, end: float) -> bool:
    """Whether [begin, end] (monotonic seconds) meets any stall."""
    return any(start <= end and begin <= start + seconds for start, seconds in stalls)


def _setup(
    priority: int, period: float, threshold: float
) -> tuple[str | None, Callable[[object], list[Stall]]]:
    stalls: list[Stall] = []
    stop = threading.Event()
    started = threading.Event()
    outcome: list[str | None] = []

    def watch() -> None:
        with realtime_priority(priority) as not_realtime:
            outcome.append(not_realtime)
            started.set()
            while not stop.is_set():
                asleep = time.monotonic()
                time.sleep(period)
                late = time.monotonic() - asleep - period
                if late > threshold:
                    stalls.append((asleep + period, late))

    thread = threading.Thread(target=watch, name="stall-witness", daemon=True)
    thread.start()
    started.wait()

    def finish(_: object) -> list[Stall]:
        stop.set()
        thread.join()
        return stalls

    return outcome[0], finish
