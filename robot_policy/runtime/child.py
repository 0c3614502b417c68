"""A spawned child process that answers requests over a pipe.

The control loop's interpreter should run nothing but the loop: Python code and C extensions
that hold the GIL (a policy's small tensor ops, a PyBullet step) delay its wake-ups even on an
idle core. What must run beside the loop (inference, a simulated arm) runs in one of these.

The child is spawned, not forked, so it starts with a clean torch and its own thread count.
`setup(*args)` runs in the child and returns `(ready, handle)`: `ready` goes back to the parent
once, then every request is answered with `handle(request)`, in order. A failure is sent back
as text and raised in the parent, so a broken child never hangs the caller.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

Setup = Callable[..., tuple[Any, Callable[[Any], Any]]]


class ChildError(RuntimeError):
    """The child's setup or one of its requests failed; the message carries the child's error."""


class ChildConnection:
    """The parent's end of a child's connection: `send`, `ready_reply`, `recv`. How the child
    starts and stops (`start`, `stop`) is the subclass's."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._conn: Connection | None = None

    def start(self) -> Any:
        """Start the child; return its `ready` value once its setup finished."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the child to exit after its current request; end it if it does not."""
        raise NotImplementedError

    def send(self, request: Any) -> None:
        """Queue a request (None is reserved for stopping the child)."""
        if request is None:
            raise ValueError("None stops the child; use stop()")
        self._connection.send(request)

    def ready_reply(self, timeout: float = 0.0) -> bool:
        """Whether a reply is waiting (within `timeout` s), so that `recv` would not block."""
        return self._connection.poll(timeout)

    def recv(self) -> Any:
        """The next reply, in request order; raises `ChildError` for a failed request."""
        try:
            kind, value = self._connection.recv()
        except EOFError as exc:
            raise ChildError(f"{self.name} exited") from exc
        if kind == "error":
            raise ChildError(f"{self.name}: {value}")
        return value

    @property
    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._conn


class ChildServer(ChildConnection):
    """A spawned child of this Python: `start`, `send`, `ready_reply`, `recv`, `stop`. Nothing
    here blocks except `start` (until the child is ready), `recv`, `stop` and a `ready_reply`
    given a timeout."""

    def __init__(self, name: str, setup: Setup, *args: Any) -> None:
        super().__init__(name)
        self._setup = setup
        self._args = args
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> Any:
        """Spawn the child; return its `ready` value once its setup finished."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} already started")
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, self._setup, self._args), name=self.name, daemon=True
        )
        self._process.start()
        child.close()
        try:
            return self.recv()
        except BaseException as exc:
            self.stop()
            raise ChildError(f"{self.name} failed to start: {exc}") from exc

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to exit after its current request; terminate it if it does not."""
        process, conn = self._process, self._conn
        if process is None or conn is None:
            return
        if process.is_alive():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass  # already gone: nothing to ask
            process.join(timeout=timeout)
        if process.is_alive():
            process.terminate()
            process.join()
        conn.close()


def yield_to_the_loop(niceness: int = 0) -> None:
    """For a child's setup: never preempt the control loop when woken, and lose the core to it.

    A request sent over the pipe wakes the child, and the kernel would let it run at once on
    the sender's core: the loop's `send` of a command then returned only after the whole
    PyBullet step (2.9 ms instead of 0.17 ms, measured). SCHED_BATCH (Linux; unprivileged) turns
    that wake-up preemption off; `niceness` also gives the loop the larger share of a busy core.
    """
    if niceness:
        os.nice(niceness)
    if hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def serve(conn: Connection, setup: Setup, args: tuple[Any, ...]) -> None:
    """The child's side: set up, send ready (or why not), answer requests until None comes.

    Also the loop of `lerobot_server.py`, which loads this file by path in LeRobot's own
    interpreter: keep this module free of anything but the standard library."""
    try:
        ready, handle = setup(*args)
    except Exception as exc:
        conn.send(("error", repr(exc)))
        return
    conn.send(("ready", ready))
    while (request := conn.recv()) is not None:
        try:
            conn.send(("reply", handle(request)))
        except Exception as exc:
            conn.send(("error", repr(exc)))
