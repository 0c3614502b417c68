"""The control loop: the one implementation control_node, `bench loop` and `eval` all run.

Each tick does what a ros2_control controller's update does, in a fixed order: take the chunks
that have arrived, take the arm's newest measured state, let the chunk source ask for a new
chunk if one is due, run `Controller.tick` (scheduler + safety filter + watchdog) and send the
command. What differs between the three users is only what stands at the loop's edges:

- the clock: `RateLoop` on the wall clock (node, bench) or `SimulatedClock` (eval);
- the `Arm`: ROS topics, a simulator in a child process, or a gymnasium env stepped in place;
- the `ChunkSource`: chunks handed over by ROS callbacks, or an inference worker fed from the
  loop's own observations (`runtime.planner.InferenceSource`);
- observers: book-keeping beside the loop (timing, video, traces, jerk), never inside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.controller import Controller
from robot_policy.safety import FilterResult


@dataclass(frozen=True)
class Observed:
    """One measurement of the arm: when it was taken, the measured command-space vector (arm
    joints + gripper, the policy's action order), and the whole observation where the arm
    provides one (a policy fed by the loop needs it; ROS topics carry only the state)."""

    stamp: float
    state: np.ndarray
    observation: Mapping[str, np.ndarray] | None = None


class Arm(Protocol):
    """What the loop needs of an arm. `send` returns nothing: what reached the arm comes back
    through `observe`, as from a real driver."""

    def observe(self) -> Observed | None:
        """The newest measurement since the last call, or None; never blocks."""

    def send(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        """Command the arm (positions in action order, and the velocity the filter implies)."""


class ChunkSource(Protocol):
    def poll(self, now: float) -> Iterable[TimedChunk]:
        """The chunks that have arrived by `now`, oldest first; never blocks."""

    def observed(self, measured: Observed, controller: Controller, now: float) -> None:
        """A new measurement: a source that infers from the loop's observations may request
        a chunk here (`controller.scheduler` says whether one is due)."""


class TickObserver(Protocol):
    def on_tick(self, tick: Tick) -> None: ...


@dataclass(frozen=True)
class Tick:
    """What one tick did and how long it took: `now` (the tick's time on the loop's clock),
    the filter's result (None while no state has been measured), the seconds from waking to
    the command sent (wall and this thread's CPU time), and the controller's share of them."""

    index: int
    now: float
    woke: float  # time.monotonic() when the tick began: its lateness on a wall clock
    result: FilterResult | None
    work_s: float
    work_cpu_s: float
    tick_s: float
    tick_cpu_s: float
    chunks_accepted: int


class SimulatedClock:
    """Simulated time for `ControlLoop.run`: tick k is at k·period, and waiting costs nothing
    (the simulator advances when the arm is sent a command, as a real arm would not wait)."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz
        self._k = -1

    def wait(self) -> float:
        self._k += 1
        return self._k * self.period


class Clock(Protocol):
    period: float

    def wait(self) -> float: ...


class ControlLoop:
    """Chunks in, measured state in, one controller tick, command out — at the clock's rate.

    `filtered=False` sends the scheduler's pick instead of the filter's output (the filter still
    runs, so its interventions are counted): only for measuring what the filter changes.
    """

    def __init__(
        self,
        controller: Controller,
        arm: Arm,
        source: ChunkSource,
        observers: Sequence[TickObserver] = (),
        filtered: bool = True,
    ) -> None:
        self.controller = controller
        self.arm = arm
        self.source = source
        self.observers = list(observers)
        self.filtered = filtered
        self.state: np.ndarray | None = None
        self._last: np.ndarray | None = None  # last command sent
        self._k = 0

    def activate(self, measured: Observed, period: float) -> None:
        """Start from a measured state before the clock starts, as a ros2_control controller's
        on_activate: the filter's first-call costs (1-12 ms measured) are not charged to tick 0.
        The source sees the measurement too, so the first chunk is requested at once."""
        self.state = np.asarray(measured.state, dtype=np.float64)
        self.controller.tick(self.state, measured.stamp - period)
        self.source.observed(measured, self.controller, measured.stamp)

    def step(self, now: float, period: float) -> Tick:
        """One tick at time `now` on the loop's clock."""
        woke_at = time.monotonic()
        woke, woke_cpu = time.perf_counter(), time.thread_time()
        accepted = 0
        for chunk in self.source.poll(now):
            accepted += self.controller.add_chunk(chunk, now)
        measured = self.arm.observe()
        if measured is not None:
            self.state = np.asarray(measured.state, dtype=np.float64)
            self.controller.observe(measured.stamp, self.state)
            self.source.observed(measured, self.controller, now)
        result = None
        tick_s = tick_cpu_s = 0.0
        if self.state is not None:
            begin, begin_cpu = time.perf_counter(), time.thread_time()
            result = self.controller.tick(self.state, now)
            tick_s, tick_cpu_s = time.perf_counter() - begin, time.thread_time() - begin_cpu
            command = result.command if self.filtered else self._unfiltered()
            previous, self._last = self._last, command
            # The filter integrates q += v·dt, so the velocity is the step over one period.
            velocity = (
                (command - previous) / period if previous is not None else np.zeros_like(command)
            )
            self.arm.send(command, velocity, now)
        tick = Tick(
            self._k,
            now,
            woke_at,
            result,
            time.perf_counter() - woke,
            time.thread_time() - woke_cpu,
            tick_s,
            tick_cpu_s,
            accepted,
        )
        self._k += 1
        for observer in self.observers:
            observer.on_tick(tick)
        return tick

    def run(self, clock: Clock, until: Callable[[Tick], bool]) -> Tick:
        """Tick at the clock's rate until `until(tick)` is true; the last tick."""
        while True:
            tick = self.step(clock.wait(), clock.period)
            if until(tick):
                return tick

    def _unfiltered(self) -> np.ndarray:
        scheduled = self.controller.scheduled
        if scheduled is not None:
            return scheduled
        assert self.state is not None
        return self._last if self._last is not None else self.state.copy()
