"""Speed: a cap on the tool's commanded Cartesian speed, and a monitor of what the arm does.

The joint limiter bounds what the arm is told. A position-controlled arm tracks that with some
overshoot (measured in the sim: up to 1.12x a joint's commanded speed quiet, more when the
machine stalls), so two things sit beside it here:

- `SpeedCap`, a stage of the filter's Cartesian step: the tool centre point's commanded speed
  stays at or below `tcp_limit` (ISO 10218-1's reduced speed is 0.25 m/s), and every joint at
  `joint_scale` of its limit while the monitor has slowed the arm. Like the energy tank it only
  moves the velocity toward a slower one inside the joint window, so entering reduced speed
  while moving fast is a deceleration within the acceleration limit, not a jump.
- `SpeedMonitor`, on the measured joint positions: joint speeds against the hardware (URDF)
  limits and the tool's speed against the cap, both times a tolerance. A first excess slows
  the arm (`slow_scale` of the joint limits for `slow_time`); an excess that outlasts the time
  the arm needs to brake, while slowed, is a protective stop, latched until reset: the arm is
  not following its commands.

The margin between the filter's limits and the hardware's is `limits.velocity_scale`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_policy.robots.kinematics import Kinematics
from robot_policy.settings import setting

REDUCED_TCP_SPEED = 0.25  # m/s: ISO 10218-1 reduced speed
# s over which measured positions are differenced: shorter windows amplify encoder noise.
SPEED_WINDOW = 0.02


@dataclass(frozen=True)
class SpeedSettings:
    """The `speed:` section of a safety YAML."""

    tcp_limit: float | None = setting(
        None, "m/s the tool centre point is commanded at most; null = no Cartesian cap"
    )
    reduced_tcp_limit: float = setting(
        REDUCED_TCP_SPEED, "m/s in reduced-speed mode (ISO 10218-1: 0.25)", low=1e-3
    )
    monitor: bool = setting(True, "compare measured joint and tool speed with the limits")
    tolerance: float = setting(
        1.0, "measured speed may reach hardware limit x this before the monitor acts", low=1.0
    )
    slow_scale: float = setting(0.5, "joint limits x this after a first excess", low=0.05)
    slow_time: float = setting(1.0, "s the arm stays slowed after an excess", low=0.0)

    def __post_init__(self) -> None:
        if self.tcp_limit is not None and not self.tcp_limit > 0:
            raise ValueError(f"speed: tcp_limit must be > 0 or null, got {self.tcp_limit}")
        if not self.slow_scale <= 1.0:
            raise ValueError(f"speed: slow_scale must be <= 1, got {self.slow_scale}")


class SpeedCap:
    """Caps the arm's commanded velocity; the filter asks `limit` once per tick.

    `tcp_limit` (m/s, None: none) and `joint_scale` are set from outside (the mode, the
    monitor) and take effect at the next tick, decelerating within the acceleration limit.
    """

    def __init__(self, kinematics: Kinematics, velocity: Sequence[float], tcp_limit: float | None):
        self.kinematics = kinematics
        self.velocity = np.asarray(velocity, dtype=float)
        self.tcp_limit = tcp_limit
        self.joint_scale = 1.0

    @property
    def active(self) -> bool:
        return self.tcp_limit is not None or self.joint_scale < 1.0

    def limit(
        self,
        q: np.ndarray,
        previous: np.ndarray,
        window: tuple[np.ndarray, np.ndarray],
        velocity_step: np.ndarray,
        proposal: np.ndarray,
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """(velocity on the segment slowing → proposal, reasons it was shortened).

        `slowing` is the last velocity `previous` scaled down as far as one tick's
        `velocity_step` (a·dt per joint) allows, clipped into the joint `window` (lo, hi):
        unlike braking joint by joint it keeps the motion's direction, so it is slower at the
        tool too. The result is the largest fraction of the way to the proposal within
        joint_scale of every joint's limit and within tcp_limit at the tool (|J(q)·v| along
        the segment is a convex quadratic, so its largest admissible point is a root; the
        filter passes q half a step ahead, the tool's speed over the tick to second order).
        When even `slowing` is too fast, the slowest point of the segment: the arm then slows
        at least as fast as `slowing` does, within its acceleration limit.
        """
        speed = np.abs(previous)
        moving = speed > velocity_step
        factor = 1.0 - float(np.min(velocity_step[moving] / speed[moving])) if moving.any() else 0
        slowing = np.clip(previous * factor, *window)
        step = proposal - slowing
        s, reasons = 1.0, []
        if self.joint_scale < 1.0:
            cap = self.velocity * self.joint_scale
            over = np.abs(proposal) > cap
            if over.any():
                reasons.append("speed_monitor_slowed")
                for i in np.flatnonzero(over):
                    if abs(slowing[i]) >= cap[i]:
                        s = 0.0
                    else:
                        bound = math.copysign(cap[i], proposal[i])
                        s = min(s, (bound - slowing[i]) / step[i])
        if self.tcp_limit is not None:
            jacobian = self.kinematics.jacobian(q)
            u, w = jacobian @ slowing, jacobian @ step
            if float(np.linalg.norm(u + s * w)) > self.tcp_limit:
                reasons.append("tcp_speed")
                a, b, c = float(w @ w), float(u @ w), float(u @ u) - self.tcp_limit**2
                if c >= 0.0:  # even slowing is too fast: the slowest point before s
                    s = min(s, max(0.0, -b / a)) if a > 0 else 0.0
                else:
                    s = min(s, (-b + math.sqrt(max(b * b - a * c, 0.0))) / a)
        if not reasons:
            return proposal, ()
        return slowing + max(0.0, min(s, 1.0)) * step, tuple(reasons)


@dataclass(frozen=True)
class Verdict:
    """What the monitor saw in one measurement: speeds (None until two samples are
    `SPEED_WINDOW` apart), the worst ratio to its limit, and `stop` (a reason) when the arm
    must stop now."""

    joint_ratio: float | None
    tcp_speed: float | None
    excess: str | None
    stop: str | None


class SpeedMonitor:
    """Measured speed against the limits; drives a `SpeedCap`'s joint_scale (module doc).

    An excess slows the arm; one still there `grace` s later (the time the filter needs to
    brake any joint from its hardware limit to rest) while the arm is slowed is a stop: the
    slowdown did not take, so the arm is not following its commands.
    """

    def __init__(
        self,
        kinematics: Kinematics,
        hardware_velocity: Sequence[float],
        acceleration: Sequence[float],
        joint_names: Sequence[str],
        cap: SpeedCap,
        settings: SpeedSettings,
    ) -> None:
        self.kinematics = kinematics
        self.hardware = np.asarray(hardware_velocity, dtype=float)
        self.grace = float(np.max(self.hardware / np.asarray(acceleration, dtype=float)))
        self.joint_names = tuple(joint_names)
        self.cap = cap
        self.settings = settings
        self._samples: list[tuple[float, np.ndarray]] = []
        self._slowed_at = self._slowed_until = -math.inf
        self._exceeding = False
        self.excesses = 0  # times the speed went over a limit
        self.peak_ratio = 0.0

    def observe(self, stamp: float, q: np.ndarray) -> Verdict:
        """One measured arm position (stamped on the measurement's clock)."""
        q = np.asarray(q, dtype=float)
        if not (math.isfinite(stamp) and np.all(np.isfinite(q))):
            return Verdict(None, None, None, None)
        if self._samples and stamp <= self._samples[-1][0]:
            self._samples.clear()  # a clock jump or a replay: start the window again
        self._samples.append((stamp, q))
        while len(self._samples) > 2 and stamp - self._samples[1][0] >= SPEED_WINDOW:
            self._samples.pop(0)
        if stamp >= self._slowed_until:
            self.cap.joint_scale = 1.0
        then, old = self._samples[0]
        span = stamp - then
        if span < SPEED_WINDOW:
            return Verdict(None, None, None, None)
        ratios = np.abs(q - old) / span / self.hardware
        worst = int(np.argmax(ratios))
        ratio = float(ratios[worst])
        moved = self.kinematics.ee_position(q) - self.kinematics.ee_position(old)
        tcp = float(np.linalg.norm(moved)) / span
        self.peak_ratio = max(self.peak_ratio, ratio)
        excess, tolerance = None, self.settings.tolerance
        if ratio > tolerance:
            excess = (
                f"{self.joint_names[worst]} at {ratio * self.hardware[worst]:.3g} rad/s, over "
                f"{tolerance:g} x {self.hardware[worst]:.3g}"
            )
        elif self.cap.tcp_limit is not None and tcp > self.cap.tcp_limit * tolerance:
            excess = f"tool at {tcp:.3g} m/s, over {tolerance:g} x {self.cap.tcp_limit:.3g}"
        if excess is None:
            self._exceeding = False
            return Verdict(ratio, tcp, None, None)
        self.excesses += not self._exceeding
        self._exceeding = True
        if not self.settings.monitor:
            return Verdict(ratio, tcp, excess, None)
        if stamp < self._slowed_until:
            stop = f"speed_monitor: {excess}" if stamp >= self._slowed_at + self.grace else None
            return Verdict(ratio, tcp, excess, stop)
        self._slowed_at, self._slowed_until = stamp, stamp + self.settings.slow_time
        self.cap.joint_scale = self.settings.slow_scale
        return Verdict(ratio, tcp, excess, None)
