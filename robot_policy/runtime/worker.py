"""Running a chunk policy off the control loop's thread.

Inference takes tens of milliseconds to seconds; a control loop at 50-100 Hz cannot wait for it.
The worker holds at most one pending observation: a newer submission replaces an unstarted
older one, because a backlog of old observations would only produce chunks that are stale on
arrival. Results come back as `TimedChunk`s stamped with the observation's time, so the
scheduler can drop the actions that latency has already made stale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.recent import RecentWindow
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.replan import PlanHints


class InferenceError(RuntimeError):
    """A request failed in the worker thread; `__cause__` is the original exception."""


class WorkerBase:
    """What both workers (this thread, `ProcessInference`'s child) share: the context manager
    around start/stop, the request counts and the recent latency window."""

    def __init__(self) -> None:
        self._latency_s = RecentWindow()  # inference durations, s
        self._counts = {"submitted": 0, "replaced": 0, "completed": 0, "errors": 0}

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> WorkerBase:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, float | int]:
        """Request counts and inference latency percentiles (NaN before the first result)."""
        return {
            **self._counts,
            "latency_ms_p50": self._latency_s.percentile(50, 1e3),
            "latency_ms_p99": self._latency_s.percentile(99, 1e3),
        }


class InferenceWorker(WorkerBase):
    """Runs `policy.predict_chunk` in a background thread on the latest submitted observation.

    Errors: an exception in the thread (including a chunk rejected for NaN/inf by
    `TimedChunk`) is recorded and raised as `InferenceError` from the next `poll()`, naming the
    observation stamp and the original error. The worker keeps running afterwards; whether one
    failed request should stop the robot is the caller's decision, not the thread's. A failed
    warm-up is raised from `start()` directly.

    Threads: `start()` calls `torch.set_num_threads(threads)` (in the worker thread, before the
    warm-up). On a few shared cores torch's default OpenMP thread count made a U-Net step 15x
    slower while another process was busy, so this is set on purpose rather than inherited.
    Treat the intra-op setting as process-wide: it can change the count for other torch work
    in this process too (an evaluation or training loop in the same interpreter). With the
    OpenMP backend, which threads see the change depends on the OpenMP runtime's per-thread
    state, so it is set in the thread that does the inference, where it is guaranteed to hold.
    """

    def __init__(
        self,
        policy: ChunkPolicy,
        *,
        threads: int = 1,
        warmup: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.device = next(policy.parameters()).device  # where `policies.inference` put it
        self.policy = policy.eval()
        self.threads = threads
        self.warmup = warmup
        self.dt = 1.0 / policy.config.fps
        self._clock = clock
        cfg = policy.config
        self._keys = (*cfg.state_keys, *cfg.camera_keys)
        # One condition guards all shared state below; the thread waits on it for work and
        # `wait_idle` waits on it for the thread to finish.
        self._cond = threading.Condition()
        self._pending: tuple[dict[str, torch.Tensor], float, PlanHints] | None = None
        self._running = False
        self._stopping = False
        self._result: TimedChunk | None = None
        self._error: InferenceError | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread and return once it has set its thread count and warmed up.

        Warm-up runs in the worker thread itself so the first real request does not pay for
        allocator growth, kernel selection or lazy CUDA init in the control loop's first
        seconds.
        """
        if self._thread is not None:
            raise RuntimeError("InferenceWorker already started")
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        self._ready.wait()
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            self.stop()
            raise error

    def submit(self, obs: Mapping[str, Any], stamp: float, hints: PlanHints | None = None) -> None:
        """Queue an observation history for inference without blocking.

        `obs` maps each policy key to one unbatched history, shape (n_obs_steps, ...), whose
        newest entry was observed at `stamp`. It is copied here, so the caller may reuse its
        buffers. An unstarted earlier submission is replaced (and counted as such).
        `hints`: the plan the chunk takes over from (`replan.plan_hints` on the controller's
        scheduler), for real-time chunking and warm start.
        """
        if self._thread is None or self._stopping:
            raise RuntimeError("submit() needs a started, not stopped, InferenceWorker")
        missing = [k for k in self._keys if k not in obs]
        if missing:
            raise KeyError(f"observation lacks policy keys {missing}")
        batch = {k: torch.tensor(np.asarray(obs[k]))[None] for k in self._keys}
        with self._cond:
            if self._pending is not None:
                self._counts["replaced"] += 1
            self._pending = (batch, float(stamp), hints or PlanHints())
            self._counts["submitted"] += 1
            self._cond.notify_all()

    def poll(self) -> TimedChunk | None:
        """The newest chunk finished since the last poll, or None; never blocks on inference.

        Raises `InferenceError` once for a request that failed; a chunk finished before the
        failure stays available to the following poll.
        """
        with self._cond:
            error, self._error = self._error, None
            if error is not None:
                raise error
            result, self._result = self._result, None
            return result

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending or running; False if `timeout` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._running, timeout)

    def stop(self) -> None:
        """Drop any pending request, let a running one finish, and join the thread."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    @property
    def busy(self) -> bool:
        """True while a request is pending or running: a hint for how often to submit."""
        with self._cond:
            return self._pending is not None or self._running

    def stats(self) -> dict[str, float | int]:
        with self._cond:
            return super().stats()

    def _run(self) -> None:
        try:
            torch.set_num_threads(self.threads)
            for _ in range(self.warmup):
                self._predict(self.policy.blank_observation(), PlanHints())
        except Exception as exc:
            with self._cond:
                self._error = InferenceError(f"warm-up failed: {exc!r}")
                self._error.__cause__ = exc
                self._stopping = True
        finally:
            self._ready.set()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                if self._stopping:
                    return
                assert self._pending is not None
                (obs, stamp, hints), self._pending = self._pending, None
                self._running = True
            start = self._clock()
            result: TimedChunk | None = None
            error: InferenceError | None = None
            try:
                result = TimedChunk(stamp, self.dt, self._predict(obs, hints))
            except Exception as exc:
                error = InferenceError(f"inference for stamp {stamp} failed: {exc!r}")
                error.__cause__ = exc
            elapsed = self._clock() - start
            with self._cond:
                self._running = False
                if error is None:
                    self._result = result
                    self._latency_s.add(elapsed)
                    self._counts["completed"] += 1
                else:
                    self._error = error
                    self._counts["errors"] += 1
                self._cond.notify_all()

    def _predict(self, obs: dict[str, torch.Tensor], hints: PlanHints) -> np.ndarray:
        """Actions from the observation's own step on: index n_obs_steps-1 is "now".

        The policy's window starts n_obs_steps-1 steps in the past (Diffusion Policy's
        convention); those actions are already history at `stamp`.
        """
        obs = {k: v.to(self.device) for k, v in obs.items()}
        chunk = self.policy.predict_chunk(obs, **hints.policy_kwargs(self.device))
        return chunk[0, self.policy.now_index :].cpu().numpy()
