"""One control tick: pick the action for now from the chunks, pass it through the safety filter.

This is the object the control node wraps and the in-process runtime drives, so a chunk takes
the same path to the arm with or without ROS. It reads no clock and owns no thread: the caller
paces it (`RateLoop`, a ROS timer, simulated time) and hands in `now` and the measured state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_policy import settings
from robot_policy.runtime.chunks import ChunkScheduler, SchedulerConfig, TimedChunk
from robot_policy.safety import GRIPPER, FilterResult, SafetyConfig, SafetyFilter, SafetyLimits
from robot_policy.safety.speed import Verdict
from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT
from robot_policy.settings import setting


@dataclass(frozen=True)
class ControlConfig:
    """How the control side runs; `from_dict` reads the `control:` block of a graph YAML.

    rate_hz: control tick rate (ros2_control's default update rate is 100 Hz).
    hold_timeout / stop_timeout: the watchdog — no chunk covering now for this long means hold
    the last target, then brake to a stop (MoveIt Servo's 0.1 s incoming-command timeout).
    scheduler: how chunks are stitched (see `SchedulerConfig`); interpolation is on by default
    because the control rate is usually several times the policy's action rate.
    """

    rate_hz: float = setting(100.0, "control loop rate (Hz)", low=1e-3)
    hold_timeout: float = setting(HOLD_TIMEOUT, "s without a chunk covering now before holding")
    stop_timeout: float = setting(STOP_TIMEOUT, "s without a chunk before braking to a stop")
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(interpolate=True))

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"control rate_hz must be finite and > 0, got {self.rate_hz}")
        if not 0 < self.hold_timeout <= self.stop_timeout:
            raise ValueError(
                f"need 0 < hold_timeout <= stop_timeout, got {self.hold_timeout}, "
                f"{self.stop_timeout}"
            )

    @property
    def dt(self) -> float:
        return 1.0 / self.rate_hz

    @classmethod
    def from_dict(cls, config: Mapping[str, object], where: str = "control") -> ControlConfig:
        """Build from YAML-like data (`settings.load`: unknown keys are errors)."""
        return settings.load(cls, config, where)


@dataclass
class ControlStats:
    ticks: int = 0
    ticks_without_chunk: int = 0  # no chunk covered now: the filter held the last target
    interventions: int = 0  # ticks whose command the filter changed (any reason)
    holds: int = 0  # ticks the filter output a hold (bad input, e-stop, watchdog)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "ticks": self.ticks,
            "ticks_without_chunk": self.ticks_without_chunk,
            "interventions": self.interventions,
            "holds": self.holds,
            "reasons": dict(self.reasons),
        }


class Controller:
    """Chunk scheduler + safety filter + watchdog + e-stop behind two calls: `add_chunk`, `tick`.

    The watchdog is fed on every tick where some chunk covers now, so "fresh" means the policy
    has told us what to do at this instant — not merely that a message arrived (a chunk that is
    entirely stale on arrival keeps nothing alive).
    """

    def __init__(
        self,
        joint_names: Sequence[str],
        limits: SafetyLimits,
        config: ControlConfig | None = None,
        safety: SafetyConfig | None = None,
    ) -> None:
        """`safety` adds what the limits alone do not hold (workspace box, obstacles, energy
        tank; config/safety/<robot>.yaml); `limits` must then be its `joint_limits()`, so the
        two cannot silently disagree. The watchdog timeouts always come from `config`."""
        self.config = config or ControlConfig()
        self.joint_names = tuple(joint_names)
        self.scheduler = ChunkScheduler(self.config.scheduler)
        timeouts = {
            "hold_timeout": self.config.hold_timeout,
            "stop_timeout": self.config.stop_timeout,
        }
        if safety is None:
            self.filter = SafetyFilter(limits, self.joint_names, self.config.dt, **timeouts)
        elif limits != safety.joint_limits():
            raise ValueError("limits differ from the safety config's: pass its joint_limits()")
        else:
            self.filter = safety.build_filter(self.joint_names, self.config.dt, **timeouts)
        # What the arm does, beside what it is told: only with a robot's safety config, which
        # knows its hardware limits and its tool.
        self.monitor = (
            safety.build_monitor(self.filter)
            if safety is not None and self.filter.speed is not None
            else None
        )
        self._safety = safety
        self._arm_slots = [i for i, name in enumerate(self.joint_names) if name != GRIPPER]
        self.reduced_speed = False
        self.last_verdict: Verdict | None = None
        self.stats = ControlStats()
        self._last: np.ndarray | None = None  # last scheduled action, held between chunks
        self.last_result: FilterResult | None = None

    def add_chunk(self, chunk: TimedChunk, now: float) -> bool:
        """Hand a chunk to the scheduler; False if it was out of order or entirely stale."""
        if chunk.actions.shape[1] != len(self.joint_names):
            raise ValueError(
                f"chunk has {chunk.actions.shape[1]} joints, controller has "
                f"{len(self.joint_names)} ({', '.join(self.joint_names)})"
            )
        return self.scheduler.add(chunk, now)

    def observe(self, stamp: float, state: np.ndarray) -> None:
        """A new measurement of the arm (action order), for the speed monitor: an excess
        slows the arm, a second one while slowed stops it (latched as an e-stop)."""
        if self.monitor is None:
            return
        verdict = self.monitor.observe(stamp, np.asarray(state, dtype=float)[self._arm_slots])
        self.last_verdict = verdict
        if verdict.stop is not None and self.filter.e_stopped is None:
            self.filter.engage_e_stop(verdict.stop)

    def set_reduced_speed(self, on: bool) -> None:
        """Reduced-speed mode (ISO 10218-1): the tool's commanded speed capped at the safety
        config's reduced_tcp_limit; off restores its tcp_limit. Takes effect at the next tick
        as a deceleration within the acceleration limit."""
        if self.filter.speed is None or self._safety is None:
            raise ValueError("reduced speed needs a robot's safety config (its tool)")
        speed = self._safety.speed
        self.filter.speed.tcp_limit = speed.reduced_tcp_limit if on else speed.tcp_limit
        self.reduced_speed = on

    def tick(self, state: object, now: float) -> FilterResult:
        """The command to send at `now`, given the measured joint positions `state`.

        Never raises: whatever arrives (a NaN state, no chunk yet) ends as a filter result, and a
        hold is a command too (the filter brakes to it within its limits).
        """
        scheduled = self.scheduler.action(now)
        if scheduled is not None:
            self._last = scheduled
            self.filter.feed(now)
        else:
            self.stats.ticks_without_chunk += 1
        if self._last is not None:
            desired = self._last
        elif self.last_result is not None and self.filter.initialised:
            desired = self.last_result.command  # hold still: not the state's sensor noise
        else:
            desired = state
        result = self.filter.step(desired, state, now)
        self.stats.ticks += 1
        self.stats.interventions += bool(result.reasons)
        self.stats.holds += result.held
        for reason in result.reasons:
            key = reason.split(":", 1)[0]
            self.stats.reasons[key] = self.stats.reasons.get(key, 0) + 1
        self.last_result = result
        return result

    def engage_e_stop(self, reason: str = "e_stop") -> None:
        self.filter.engage_e_stop(reason)

    def reset(self) -> None:
        """Clear the e-stop and forget old chunks: motion resumes only from a new chunk."""
        self.filter.reset()
        self.drop_chunks()

    def drop_chunks(self) -> None:
        """Forget every chunk (e.g. an operator takes over from the policy); the filter keeps
        its state, so the next chunk continues smoothly from where the arm is commanded."""
        self.scheduler = ChunkScheduler(self.config.scheduler)
        self._last = None

    @property
    def e_stopped(self) -> str | None:
        return self.filter.e_stopped

    @property
    def scheduled(self) -> np.ndarray | None:
        """The scheduler's latest pick, before the filter (held between chunks); None before
        the first chunk or after `drop_chunks`."""
        return self._last
