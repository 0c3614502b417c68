"""The scheduling of this process's threads, read by thread id (Linux's /proc/self/task).

Two places change other threads' scheduling: nodes raise the middleware's threads below their
callbacks (`runtime.rate_loop.promote_normal_threads`), and the video encoder puts back the
threads SVT-AV1 raised (`data.video`). Both list the threads and read their policies here.
"""

from __future__ import annotations

import os

REALTIME = frozenset(getattr(os, n) for n in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, n))


def thread_ids() -> list[int]:
    """This process's threads; empty where the platform has no /proc/self/task."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return []


def scheduling(tid: int) -> tuple[int, int] | None:
    """(policy without the SCHED_RESET_ON_FORK flag, priority) of a thread; None once it exited."""
    try:
        policy = os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK
        return policy, os.sched_getparam(tid).sched_priority
    except OSError:
        return None
