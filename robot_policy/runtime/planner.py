"""A chunk source fed by the control loop's own observations: `eval` and `bench loop`.

The loop hands every measurement to `InferenceSource.observed`; the source keeps the policy's
observation history by timestamp (the same `ObservationHistory` policy_node keeps from its
topics), and when the scheduler says a chunk is due and the worker is free it submits the
window ending at that measurement, with the plan hints the strategy needs. Finished chunks are
handed back from `poll`, or straight to the controller when they are ready within the same
tick (a synchronous worker on simulated time). `latency_s` holds each chunk back until that
long after its observation: simulated inference delay, for evaluating strategies under latency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.control_loop import Observed
from robot_policy.runtime.controller import Controller
from robot_policy.runtime.observations import ObservationHistory
from robot_policy.runtime.replan import PlanHints, plan_hints
from robot_policy.runtime.strategies import Strategy

# Slack when comparing a release time with the tick time (float round-off in k·dt).
_EPS = 1e-9


class Worker(Protocol):
    """`InferenceWorker`, `ProcessInference`, or eval's in-place sampler."""

    @property
    def busy(self) -> bool: ...

    def submit(
        self, obs: Mapping[str, Any], stamp: float, hints: PlanHints | None = None
    ) -> None: ...

    def poll(self) -> TimedChunk | None: ...


class InferenceSource:
    """Requests chunks from `worker` as the scheduler needs them; see the module docstring."""

    def __init__(
        self,
        worker: Worker,
        keys: Sequence[str],
        n_obs_steps: int,
        dt: float,
        now_index: int,
        horizon: int,
        strategy: Strategy,
        warm_start: bool = False,
        latency_s: float = 0.0,
    ) -> None:
        if not latency_s >= 0:
            raise ValueError(f"latency must be >= 0, got {latency_s}")
        self.worker = worker
        self.history = ObservationHistory(keys, n_obs_steps, dt)
        self.dt = dt
        self.now_index = now_index
        self.horizon = horizon
        self.strategy = strategy
        self.warm_start = warm_start
        self.latency_s = latency_s
        self._held: TimedChunk | None = None  # finished, not yet released (simulated latency)

    @property
    def busy(self) -> bool:
        return self._held is not None or self.worker.busy

    def poll(self, now: float) -> list[TimedChunk]:
        if self._held is None:
            self._held = self.worker.poll()
        if self._held is not None and now + _EPS >= self._held.stamp + self.latency_s:
            chunk, self._held = self._held, None
            return [chunk]
        return []

    def observed(self, measured: Observed, controller: Controller, now: float) -> None:
        if measured.observation is None:
            raise ValueError("an in-process chunk source needs the arm's whole observation")
        for key in self.history.keys:
            self.history.add(key, measured.stamp, measured.observation[key])
        if self.busy or not controller.scheduler.needs_chunk(now):
            return
        window = self.history.window(measured.stamp)
        if window is None:
            return
        hints = plan_hints(
            controller.scheduler,
            measured.stamp,
            self.dt,
            self.now_index,
            self.horizon,
            rtc=self.strategy.needs_plan,
            warm_start=self.warm_start,
        )
        self.worker.submit(window, measured.stamp, hints)
        for chunk in self.poll(now):  # a synchronous worker's chunk counts from this tick
            controller.add_chunk(chunk, now)
