"""`InferenceWorker`'s surface with the policy in a child process.

A policy's Python (a few hundred small tensor ops per chunk) holds the GIL it shares with a
control loop, or with a node's ROS callbacks, in the same interpreter; in a child it cannot.
The child takes its own scheduling: below the loop that shares its core (`niceness`, as in
`bench loop`, where this kept the loop's p99 jitter about half the thread worker's), or on
SCHED_FIFO (`priority`) ahead of a desktop's other work, as policy_node runs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from robot_policy.policies.inference import InferenceSettings, prepare_policy
from robot_policy.runtime.child import ChildConnection, ChildError, ChildServer, yield_to_the_loop
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.rate_loop import enter_realtime
from robot_policy.runtime.replan import PlanHints
from robot_policy.runtime.worker import InferenceError, WorkerBase

Request = tuple[dict[str, np.ndarray], float, PlanHints]


class ChildInference(WorkerBase):
    """start, submit, poll, busy, stats, stop — as `InferenceWorker`, with the policy in a child.

    One request is in flight at a time; a submission while busy waits as the pending one and a
    newer submission replaces it, as in the thread worker. A failed request raises
    `InferenceError` from the next `poll`, and the child keeps serving. The child's `start`
    returns (dt, why not realtime).
    """

    def __init__(self, child: ChildConnection) -> None:
        super().__init__()
        self._child = child
        self._in_flight: float | None = None  # the stamp being inferred
        self._pending: Request | None = None
        self.dt = math.nan
        self.not_realtime: str | None = None

    def start(self) -> None:
        """Spawn the child; return once it has loaded the policy and warmed up."""
        self.dt, self.not_realtime = self._child.start()

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

    def poll(self, timeout: float = 0.0) -> TimedChunk | None:
        """The chunk finished since the last poll (waiting up to `timeout` s for it), or None."""
        if self._in_flight is None or not self._child.ready_reply(timeout):
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


class ProcessInference(ChildInference):
    """A robot_policy checkpoint's chunks, computed on CPU in a spawned child of this Python."""

    def __init__(
        self,
        checkpoint: str | Path,
        settings: InferenceSettings | None = None,
        *,
        warmup: int = 2,
        niceness: int = 10,
        priority: int = 0,
        latency_floor: float = 0.0,
    ) -> None:
        """The child prepares the policy with `settings` (`policies.inference`), exactly as
        policy_node and `eval` do, so what it times is what they run.

        `priority`: SCHED_FIFO priority of the child (0: normal scheduling at `niceness`); when
        refused, the child runs at `niceness` and `not_realtime` says why. `latency_floor`
        (s): every answer takes at least this long, to rehearse a slower computer; the child
        sleeps the difference, so the latency reported is the floor, not the compute.
        """
        if not (math.isfinite(latency_floor) and latency_floor >= 0):
            raise ValueError(f"latency_floor must be finite and >= 0, got {latency_floor}")
        self.settings = settings or InferenceSettings()
        child = ChildServer(
            "inference-process",
            _setup,
            str(checkpoint),
            self.settings,
            warmup,
            niceness,
            priority,
            latency_floor,
        )
        super().__init__(child)


def _setup(
    checkpoint: str,
    settings: InferenceSettings,
    warmup: int,
    niceness: int,
    priority: int,
    latency_floor: float,
) -> tuple[tuple[float, str | None], Callable[[Request], tuple[np.ndarray, float]]]:
    """In the child: take its scheduling, prepare and warm up the policy; ready with (dt, why
    not realtime); answer (history, stamp, hints) with (actions, s)."""
    not_realtime = enter_realtime(priority)
    if not_realtime is not None:
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
        if (rest := latency_floor - (time.perf_counter() - start)) > 0:
            time.sleep(rest)
        return actions, time.perf_counter() - start

    return (1.0 / policy.config.fps, not_realtime), infer
