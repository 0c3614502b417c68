"""`InferenceWorker`'s surface with the policy in a child process.

A policy's Python (a few hundred small tensor ops per chunk) holds the GIL it shares with a
control loop in the same interpreter; in a child it cannot, and the child can lower its own
scheduling priority so that the loop wins a shared core. On 2 shared cores this kept the loop's
p99 jitter about half the thread worker's (BENCHMARKS.md, control loop).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from robot_policy.policies.inference import InferenceSettings, prepare_policy
from robot_policy.runtime.child import ChildError, ChildServer, yield_to_the_loop
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.replan import PlanHints
from robot_policy.runtime.worker import InferenceError, WorkerBase

Request = tuple[dict[str, np.ndarray], float, PlanHints]


class ProcessInference(WorkerBase):
    """start, submit, poll, busy, stats, stop — as `InferenceWorker`, on CPU in a child.

    One request is in flight at a time; a submission while busy waits as the pending one and a
    newer submission replaces it, as in the thread worker. A failed request raises
    `InferenceError` from the next `poll`, and the child keeps serving.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        settings: InferenceSettings | None = None,
        *,
        warmup: int = 2,
        niceness: int = 10,
    ) -> None:
        """The child prepares the policy with `settings` (`policies.inference`), exactly as
        policy_node and `eval` do, so what it times is what they run."""
        super().__init__()
        self.settings = settings or InferenceSettings()
        self._child = ChildServer(
            "inference-process", _setup, str(checkpoint), self.settings, warmup, niceness
        )
        self._in_flight: float | None = None  # the stamp being inferred
        self._pending: Request | None = None
        self.dt = math.nan

    def start(self) -> None:
        """Spawn the child; return once it has loaded the policy and warmed up."""
        self.dt = self._child.start()

    def submit(
        self, obs: Mapping[str, np.ndarray], stamp: float, hints: PlanHints | None = None
    ) -> None:
        """Queue one unbatched observation history observed at `stamp`, without blocking."""
        request = ({k: np.asarray(v) for k, v in obs.items()}, float(stamp), hints or PlanHints())
        self._counts["submitted"] += 1
        if self._in_flight is not None:
            self._counts["replaced"] += self._pending is not None
            self._pending = request
        else:
            self._send(request)

    def poll(self) -> TimedChunk | None:
        """The chunk finished since the last poll, or None; never blocks on inference."""
        if self._in_flight is None or not self._child.ready_reply():
            return None
        stamp, self._in_flight = self._in_flight, None
        try:
            actions, seconds = self._child.recv()
            chunk = TimedChunk(stamp, self.dt, actions)  # rejects NaN/inf actions
        except (ChildError, ValueError) as exc:
            self._counts["errors"] += 1
            raise InferenceError(f"inference for stamp {stamp} failed: {exc}") from exc
        finally:
            if self._pending is not None:
                self._send(self._pending)
                self._pending = None
        self._latency_s.add(seconds)
        self._counts["completed"] += 1
        return chunk

    @property
    def busy(self) -> bool:
        return self._in_flight is not None or self._pending is not None

    def stop(self) -> None:
        self._pending = None
        self._child.stop()

    def _send(self, request: Request) -> None:
        self._child.send(request)
        self._in_flight = request[1]


def _setup(
    checkpoint: str, settings: InferenceSettings, warmup: int, niceness: int
) -> tuple[float, Callable[[Request], tuple[np.ndarray, float]]]:
    """In the child: prepare and warm up the policy; answer (history, stamp, hints) with
    (actions, s)."""
    yield_to_the_loop(niceness)
    torch.set_num_threads(settings.threads)
    policy, _ = prepare_policy(checkpoint, settings)
    device = next(policy.parameters()).device
    for _ in range(warmup):
        policy.predict_chunk(policy.blank_observation())

    def infer(request: Request) -> tuple[np.ndarray, float]:
        obs, _, hints = request
        start = time.perf_counter()
        batch = {k: torch.from_numpy(v)[None].to(device) for k, v in obs.items()}
        chunk = policy.predict_chunk(batch, **hints.policy_kwargs(device))
        actions = chunk[0, policy.now_index :].cpu().numpy()
        return actions, time.perf_counter() - start

    return 1.0 / policy.config.fps, infer
