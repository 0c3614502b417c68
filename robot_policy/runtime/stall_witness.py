"""Telling a control loop's own lateness from the machine's.

A loop thread at SCHED_FIFO can only wake many milliseconds late if its CPU stops running it:
a virtual machine whose host deschedules a vCPU (or all of them), or the kernel holding the
CPU. No setting in the loop fixes that, and a benchmark that counts those misses as the loop's
says nothing about the loop. So one witness per CPU — a thread of the loop's priority pinned
to that CPU, in its own process, waking every 2 ms — notes every wake-up it got late. A loop
miss that overlaps a late stretch of any witness happened while a CPU could run nothing at the
loop's priority; the rest are the loop's own. (A stall of the CPU the loop was not on can
overlap by chance; at the stall rates measured here, a few 5-50 ms stalls a minute, that
happens to under 1% of misses.)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from robot_policy.runtime.child import ChildServer
from robot_policy.runtime.rate_loop import realtime_priority

Stall = tuple[float, float]  # (monotonic start, seconds) of a stretch the witness could not run


class StallWitness:
    """`with StallWitness(priority) as witness: ...; stalls = witness.stalls()`.

    `priority`: the loop's SCHED_FIFO priority (0: normal scheduling, a weak witness that also
    reports ordinary competition for the CPU). `threshold`: lateness that counts as a stall; a
    FIFO sleeper's own wake-up noise is well under a millisecond, and sharing its CPU with the
    loop delays it by at most one tick's work.
    """

    def __init__(self, priority: int, *, period: float = 0.002, threshold: float = 0.004) -> None:
        pinnable = hasattr(os, "sched_getaffinity")  # Linux; elsewhere one unpinned witness
        cpus: list[int | None] = sorted(os.sched_getaffinity(0)) if pinnable else [None]
        self._children = [
            ChildServer(f"stall-witness-cpu{cpu}", _setup, cpu, priority, period, threshold)
            for cpu in cpus
        ]
        self.not_realtime: str | None = None

    def __enter__(self) -> StallWitness:
        try:
            for child in self._children:
                self.not_realtime = child.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self._children:
            child.stop()

    def stalls(self) -> list[Stall]:
        """Stop watching; the stalls any CPU's witness saw since the start, oldest first."""
        for child in self._children:
            child.send("stop")
        return sorted(stall for child in self._children for stall in child.recv())


def overlaps(stalls: Sequence[Stall], begin: float, end: float) -> bool:
    """Whether [begin, end] (monotonic seconds) meets any stall."""
    return any(start <= end and begin <= start + seconds for start, seconds in stalls)


def _setup(
    cpu: int | None, priority: int, period: float, threshold: float
) -> tuple[str | None, Callable[[object], list[Stall]]]:
    stalls: list[Stall] = []
    stop = threading.Event()
    started = threading.Event()
    outcome: list[str | None] = []

    def watch() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread only (Linux)
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
