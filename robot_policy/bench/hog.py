"""A documented CPU hog for measuring under load: `bench ... --load`, `demo --load`.

A user's robot computer runs a browser, rviz, a camera driver and a recorder beside the policy;
"under load" here means busy processes spinning pure Python at the user's own niceness (0, a
desktop's), by default one per core. Each process ends when the hog is left, and on its own if
the process that started it dies, so no measurement leaves spinners behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Spins until its parent is gone; says so once it is spinning.
_SPIN = """import os
parent = os.getppid()
print("spinning", flush=True)
while os.getppid() == parent:
    pass
"""


@contextmanager
def cpu_hog(processes: int | None = None, nice: int = 0) -> Iterator[int]:
    """`processes` busy processes (default: one per CPU) at niceness `nice` while the block
    runs; entered once all of them spin; yields how many there are."""
    count = (os.cpu_count() or 1) if processes is None else processes
    if count < 0:
        raise ValueError(f"processes must be >= 0, got {count}")
    spinners = [
        subprocess.Popen(
            [sys.executable, "-c", _SPIN],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        for _ in range(count)
    ]
    try:
        for proc in spinners:
            proc.stdout.readline()
        yield count
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
