"""Action chunks placed in time, and the scheduler that picks the action for "now".

A chunk is computed from the observation at `stamp` and holds actions for `stamp + k*dt`. It
reaches the control loop late (inference takes time), so its first actions are already in the
past; indexing chunks by wall time rather than by "next action in the queue" is what keeps a slow
or jittery policy from replaying stale commands. Nothing here reads a clock: every call takes
`now` explicitly, so the same code runs in a ROS node, a simulator and a unit test.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_policy.runtime.strategies import STITCHING
from robot_policy.settings import setting

# Slack for float round-off when a time lands exactly on an action's stamp (e.g. 0.3 / 0.1).
_EPS = 1e-9


@dataclass(frozen=True)
class TimedChunk:
    """Actions `actions[k]` meant for time `stamp + k*dt` (stamp = the observation's time).

    Validated up front so a malformed policy output fails where it is produced, not as a NaN
    command several ticks later. `actions` is stored as a read-only float64 copy: a scheduler
    keeps chunks for a while and must not see them change underneath it.
    """

    stamp: float
    dt: float
    actions: np.ndarray

    def __post_init__(self) -> None:
        if not math.isfinite(self.stamp):
            raise ValueError(f"TimedChunk.stamp must be finite, got {self.stamp}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"TimedChunk.dt must be finite and > 0, got {self.dt}")
        actions = np.array(self.actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
            raise ValueError(
                f"TimedChunk.actions must have shape (H, A) with H, A >= 1, got {actions.shape}"
            )
        if not np.all(np.isfinite(actions)):
            raise ValueError("TimedChunk.actions contains NaN or inf")
        actions.flags.writeable = False
        object.__setattr__(self, "actions", actions)

    @property
    def horizon(self) -> int:
        return self.actions.shape[0]

    @property
    def end(self) -> float:
        """First time the chunk no longer covers: its last action is held for one `dt`."""
        return self.stamp + self.horizon * self.dt

    def value_at(self, t: float, interpolate: bool, start: int = 0) -> np.ndarray | None:
        """The chunk's action for time `t`, or None outside `[stamp + start*dt, end)`.

        Without interpolation an action holds until the next one is due (zero-order hold, what
        a position controller receives anyway). With it, a control loop faster than the policy's
        rate gets a straight line between neighbours instead of a staircase; after the last
        action there is nothing to interpolate towards, so it is held.
        """
        u = (t - self.stamp) / self.dt
        k = math.floor(u + _EPS)
        if k < start or k >= self.horizon:
            return None
        if not interpolate or k + 1 >= self.horizon:
            return self.actions[k].copy()
        frac = min(max(u - k, 0.0), 1.0)
        return self.actions[k] + frac * (self.actions[k + 1] - self.actions[k])


@dataclass(frozen=True)
class ChunkLimits:
    """Bounds on a chunk from outside the process (a policy or an operator on a topic).

    The watchdog only asks whether some chunk covers now, and the scheduler ignores a chunk
    no newer than the last, so without these one message could keep the arm moving long
    after its sender died (a long span or wide spacing), block every later chunk (a start far
    ahead of the clock) or stall the loop while it is parsed (a huge point count).
    max_lead: s a chunk's first action may lie ahead of the receiver's clock.
    max_duration: s a chunk may cover (horizon * dt: its last action is held for one dt).
    max_point_spacing: s between consecutive actions; also how long a single action holds.
    max_points: actions in one chunk (rclpy builds a chunk message holding the GIL: 2 ms for
    256 points, 6 ms for 1000, against the loop's 10 ms period; horizons are 16-100).
    """

    max_lead: float = 0.5
    max_duration: float = 5.0
    max_point_spacing: float = 0.5
    max_points: int = 256

    def __post_init__(self) -> None:
        for name in ("max_lead", "max_duration", "max_point_spacing"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ChunkLimits.{name} must be finite and >= 0, got {value}")
        if self.max_duration <= 0 or self.max_point_spacing <= 0:
            raise ValueError("ChunkLimits.max_duration and max_point_spacing must be > 0")
        if self.max_points < 1:
            raise ValueError(f"ChunkLimits.max_points must be >= 1, got {self.max_points}")


def delay_steps(chunk: TimedChunk, now: float) -> int:
    """Realised inference delay d = ⌈(now - stamp)/dt⌉ in action steps (RTC's d).

    Negative only if the stamp is ahead of `now`, i.e. the clocks disagree; left visible
    rather than clamped so a skewed clock shows up in the report.
    """
    return math.ceil((now - chunk.stamp) / chunk.dt - _EPS)


@dataclass(frozen=True)
class SchedulerConfig:
    """How chunks are stitched together.

    receding: the newest chunk wins from its first fresh action on (Diffusion Policy, π0).
    ensemble: average every chunk that has an action for now, w_i = exp(-m*i), i = 0 the oldest
    (ACT); smoother, but it hurt π0, hence both.
    (Real-time chunking stitches as receding; its policy half asks `plan` for the committed
    actions and `expected_delay_steps` for how many of them run before the chunk lands.)
    n_action_steps: actions after a chunk's stamp before a new chunk is due (`needs_chunk`).
    stale_margin: actions due before arrival + margin are dropped, leaving the downstream
    controller lead time (Diffusion Policy's real-robot loop uses 0.01 s).
    delay_window / delay_quantile: the delay estimate is this quantile of the last
    `delay_window` measured delays: high, because committing too few actions lets the new
    chunk jump at the switch, while committing too many only costs some freedom.
    """

    strategy: str = setting("receding", "chunk stitching", choices=STITCHING)
    n_action_steps: int = setting(8, "actions of a chunk executed before the next is due", low=1)
    ensemble_decay: float = setting(0.01, "ensemble: ACT's m in w_i = exp(-m*i)", low=0.0)
    stale_margin: float = setting(
        0.0, "s of lead time: actions due before arrival + margin are dropped", low=0.0
    )
    interpolate: bool = setting(False, "interpolate between a chunk's actions at the loop rate")
    delay_window: int = setting(20, "measured delays the delay estimate looks back on", low=1)
    delay_quantile: float = setting(
        0.9, "quantile of the recent delays taken as the expected delay", low=0.0, high=1.0
    )

    def __post_init__(self) -> None:
        if self.strategy not in STITCHING:
            raise ValueError(f"strategy must be one of {STITCHING}, got {self.strategy!r}")
        if self.delay_window < 1:
            raise ValueError(f"delay_window must be >= 1, got {self.delay_window}")
        if not 0.0 <= self.delay_quantile <= 1.0:
            raise ValueError(f"delay_quantile must be in [0, 1], got {self.delay_quantile}")
        if self.n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {self.n_action_steps}")
        if not (math.isfinite(self.ensemble_decay) and self.ensemble_decay >= 0):
            raise ValueError(f"ensemble_decay must be finite and >= 0, got {self.ensemble_decay}")
        if not (math.isfinite(self.stale_margin) and self.stale_margin >= 0):
            raise ValueError(f"stale_margin must be finite and >= 0, got {self.stale_margin}")


@dataclass
class SchedulerStats:
    """Counters for the deadline-miss / realised-delay report."""

    chunks_received: int = 0
    chunks_out_of_order: int = 0
    chunks_fully_stale: int = 0
    stale_actions_dropped: int = 0
    max_delay_steps: int = 0
    total_delay_steps: int = 0  # with the count of accepted-in-order chunks, gives the mean
    last_ignored: str = ""  # why the latest ignored chunk was ignored

    @property
    def mean_delay_steps(self) -> float:
        in_order = self.chunks_received - self.chunks_out_of_order
        return self.total_delay_steps / in_order if in_order else 0.0


@dataclass(frozen=True)
class _Active:
    chunk: TimedChunk
    start: int  # first action that was still fresh when the chunk arrived


class ChunkScheduler:
    """Holds the chunks that still cover the future and answers "which action now?"."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.stats = SchedulerStats()
        self._active: list[_Active] = []  # oldest first; stamps strictly increasing
        self._last_stamp = -math.inf
        self._action_dim: int | None = None
        self._delays: deque[int] = deque(maxlen=self.config.delay_window)

    def add(self, chunk: TimedChunk, now: float) -> bool:
        """Accept a chunk arriving at `now`; False if it was ignored.

        A chunk no newer than the last one accepted is ignored: with an async worker an old
        request can finish after a newer one, and its actions are based on older information.
        Actions due before `now + stale_margin` are dropped, so the chunk takes over only from
        its first fresh action — except the last, which holds until the chunk's end: a
        one-action chunk stamped with its observation time is due before it can arrive, yet
        still says what to do now. A chunk that ends before `now + stale_margin` is dropped
        whole. Why a chunk was ignored is kept in `stats.last_ignored`.
        """
        if self._action_dim is not None and chunk.actions.shape[1] != self._action_dim:
            raise ValueError(
                f"chunk action dim {chunk.actions.shape[1]} != scheduler's {self._action_dim}"
            )
        self.stats.chunks_received += 1
        if chunk.stamp <= self._last_stamp:
            self.stats.chunks_out_of_order += 1
            self.stats.last_ignored = (
                f"out of order: stamp {chunk.stamp:.6f} not after the last chunk's "
                f"{self._last_stamp:.6f}"
            )
            return False
        delay = delay_steps(chunk, now)
        self._delays.append(delay)
        self.stats.total_delay_steps += delay
        self.stats.max_delay_steps = max(self.stats.max_delay_steps, delay)
        fresh_from = now + self.config.stale_margin
        start = max(0, math.ceil((fresh_from - chunk.stamp) / chunk.dt - _EPS))
        if start >= chunk.horizon and fresh_from < chunk.end - _EPS:
            start = chunk.horizon - 1  # the last action still holds
        self.stats.stale_actions_dropped += min(start, chunk.horizon)
        self._last_stamp = chunk.stamp
        self._action_dim = chunk.actions.shape[1]
        self._active = [a for a in self._active if a.chunk.end > now + _EPS]
        if start >= chunk.horizon:
            self.stats.chunks_fully_stale += 1
            self.stats.last_ignored = (
                f"stale: ends {fresh_from - chunk.end:.4f} s before now + stale_margin "
                f"({delay} steps of {chunk.dt:g} s late)"
            )
            return False
        self._active.append(_Active(chunk, start))
        return True

    def action(self, now: float) -> np.ndarray | None:
        """The action for `now`, or None when no chunk covers it (the watchdog then holds)."""
        interp = self.config.interpolate
        if self.config.strategy != "ensemble":  # receding: the newest chunk wins
            for a in reversed(self._active):
                value = a.chunk.value_at(now, interp, a.start)
                if value is not None:
                    return value
            return None
        values = [a.chunk.value_at(now, interp, a.start) for a in self._active]
        values = [v for v in values if v is not None]  # oldest first, so i = 0 is the oldest
        if not values:
            return None
        weights = np.exp(-self.config.ensemble_decay * np.arange(len(values)))
        return weights @ np.stack(values) / weights.sum()

    def needs_chunk(self, now: float) -> bool:
        """Whether the inference worker should deliver a new chunk by `now`.

        Counted from the newest chunk's stamp, not its arrival: latency eats into the
        n_action_steps budget, so a policy slower than n_action_steps*dt is asked continuously.
        """
        if not self._active:
            return True
        newest = self._active[-1].chunk
        steps = min(self.config.n_action_steps, newest.horizon)
        return now >= newest.stamp + steps * newest.dt - _EPS

    def expected_delay_steps(self) -> int:
        """How many steps the next chunk will likely arrive late: a high quantile of recent
        measured delays (0 before any), never negative. RTC's d, estimated online."""
        if not self._delays:
            return 0
        return max(0, math.ceil(np.quantile(self._delays, self.config.delay_quantile) - _EPS))

    def plan(self, start: float, dt: float, steps: int) -> np.ndarray:
        """The actions `action` would give at start + k*dt, k = 0..steps-1, up to the first
        time no chunk covers: shape (m, A), m <= steps (m = 0 when nothing covers `start`).

        What is committed for the near future as far as the chunks already here decide it;
        a new chunk can be made to agree with it (RTC) or start from it (warm start).
        """
        actions = []
        for k in range(steps):
            value = self.action(start + k * dt)
            if value is None:
                break
            actions.append(value)
        if not actions:
            return np.zeros((0, self._action_dim or 0))
        return np.stack(actions)
