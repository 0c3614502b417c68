"""Per-tick joint-space safety filter between a policy and a position-controlled arm.

This is a software filter, not a safety-rated function: the hardware e-stop and the robot's own
safety controller stay primary. Its job is to make every command it forwards executable and
unsurprising: finite, inside the position limits (with margin), and reachable from the previous
output within velocity, acceleration and jerk limits, so that a glitching policy produces a
smooth stop instead of a jump, and a Franka never rejects the stream as discontinuous.

Constraints are ranked; when they conflict the lower one yields: velocity and acceleration
(always held) > stopping in time before a position limit > jerk > following the command. Jerk
therefore only holds for certain where jerk·dt >= 2·acceleration (the defaults at <= 100 Hz);
at faster rates it is best effort, giving way when braking for a limit or a hold needs it.
Holds (bad input, e-stop, stale source) are targets of "zero velocity here", so they go through
the same limiter and come out as the shortest stop the limits allow rather than a freeze.
A distant target is approached, not jumped at: the speed that closes the gap is capped to what
can still brake within it (reason "approach"), while a moving target's own motion is fed
forward, so following a trajectory is not slowed.

Optionally the arm's velocity then passes a Cartesian stage, inside the same acceleration
window: the barrier filter (barrier.py: workspace box and obstacles, reasons "workspace:<face>",
"obstacle:<name>", with the whole-arm keep-out "link_obstacle:<link>:<name>", and
"barrier_brake"), the energy tank (energy.py, reason "energy") and the speed cap (speed.py:
the tool's Cartesian speed, reasons "tcp_speed" and "speed_monitor_slowed"). All move the
velocity only toward the braking step (every joint slowing by a·dt), which the joint limits
always admit, so the Cartesian stage never breaks a joint limit; barriers outrank jerk, the
energy budget and the speed cap, because braking always satisfies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robot_policy.safety.barrier import CartesianBarrierFilter
from robot_policy.safety.energy import EnergyTank
from robot_policy.safety.limits import GRIPPER, SafetyLimits
from robot_policy.safety.speed import SpeedCap
from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT, Freshness, Watchdog

_STILL = 1e-12  # rad/s (m/s): slower counts as not moving; ratios by smaller speeds overflow


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What to send this tick, and why it differs from what was asked.

    `scale` is the single factor applied to the arm's joint-velocity vector (1.0: unscaled);
    when no single factor fits the limits each joint is clipped and `scale` is the resulting
    speed ratio, with reason "rate_limited".
    """

    command: np.ndarray
    held: bool
    reasons: tuple[str, ...]
    scale: float


class SafetyFilter:
    """Stateful filter: `step` once per control tick with the desired and measured positions.

    The per-joint arithmetic runs on Python floats, not numpy: on 8-vectors a numpy call costs
    about a microsecond of dispatch for nanoseconds of work, and the limiter needs some seventy
    of them per tick, while the same formulas on floats take a third of the time. The
    Cartesian stage, whose work is matrix-shaped, stays in numpy.
    """

    def __init__(
        self,
        limits: SafetyLimits,
        joint_names: Sequence[str],
        dt: float,
        hold_timeout: float = HOLD_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        *,
        barriers: CartesianBarrierFilter | None = None,
        energy: EnergyTank | None = None,
        speed: SpeedCap | None = None,
    ) -> None:
        """`barriers`, `energy` and `speed` add the Cartesian stage (module docstring); they
        act on the non-gripper joints, then the robot's arm joints in URDF order."""
        names = tuple(joint_names)
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate joint names in {names}")
        if not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        lim = limits.arrays(names)
        self.joint_names = names
        self.dt = float(dt)
        self.watchdog = Watchdog(hold_timeout, stop_timeout)
        self._index = {n: i for i, n in enumerate(names)}
        self._n = len(names)
        self._lower, self._upper = lim["lower"], lim["upper"]
        # Per joint, as floats for the tick: position window, speed limit, acceleration limit,
        # largest velocity change per tick, largest change of (acceleration * dt) per tick.
        self._joints = tuple(
            zip(
                lim["lower"].tolist(),
                lim["upper"].tolist(),
                lim["velocity"].tolist(),
                lim["acceleration"].tolist(),
                (lim["acceleration"] * dt).tolist(),
                (lim["jerk"] * dt * dt).tolist(),
                strict=True,
            )
        )
        # The arm moves as one vector so a Cartesian path keeps its shape when slowed down;
        # the gripper is limited on its own so a slow gripper does not slow the arm.
        self._arm_slots = [i for i, n in enumerate(names) if n != GRIPPER]
        self._own_slots = [i for i, n in enumerate(names) if n == GRIPPER]
        arm_names = tuple(names[i] for i in self._arm_slots)
        self._brake_step = (lim["acceleration"] * dt)[self._arm_slots]  # the arm's a·dt
        if barriers is not None and not (
            barriers.joint_names == arm_names
            and barriers.dt == self.dt
            and np.array_equal(barriers.velocity_step, self._brake_step)
        ):
            raise ValueError("barriers must be built for these arm joints, limits and dt")
        if energy is not None and energy.inertia.shape != (len(arm_names),):
            raise ValueError(f"energy tank needs one inertia per arm joint {arm_names}")
        if speed is not None and speed.velocity.shape != (len(arm_names),):
            raise ValueError(f"speed cap needs one velocity limit per arm joint {arm_names}")
        self.barriers = barriers
        self.energy = energy
        self.speed = speed
        self._q: list[float] | None = None  # last output position
        self._v = [0.0] * self._n  # last output velocity
        self._adt = [0.0] * self._n  # last output acceleration * dt
        self._target: list[float] | None = None  # last accepted command, for watchdog_hold
        self._last_target: list[float] | None = None  # last tick's target, for feed-forward
        self._e_stop: str | None = None

    @property
    def initialised(self) -> bool:
        """Whether a valid state has been seen, i.e. the filter has a position to move from."""
        return self._q is not None

    @property
    def e_stopped(self) -> str | None:
        """Why the e-stop is engaged, or None."""
        return self._e_stop

    def engage_e_stop(self, reason: str = "e_stop") -> None:
        """Latch: every `step` brakes and holds until `reset` is called explicitly."""
        self._e_stop = reason

    def reset(self) -> None:
        """Clear the e-stop. Motion resumes from the held output, rate-limited, never a jump."""
        self._e_stop = None
        self._target = None
        self._last_target = None

    def feed(self, now: float) -> None:
        """Mark the command source alive (e.g. a new action chunk arrived)."""
        self.watchdog.feed(now)

    def step(self, command: object, state: object, now: float) -> FilterResult:
        """Filter one tick's command. Never raises: bad input becomes a hold with its reason.

        `command` and `state` are positions in `joint_names` order, or mappings name -> value
        (preferred over the wire, where order is by name). `state` is only used to start from
        on the first tick; afterwards the filter rate-limits from its own previous output.
        """
        reasons: list[str] = []
        if self._q is None:
            start, problems = self._parse(state)
            if start is None:
                return self._no_reference(state, problems)
            self._q = start  # even if outside the limits: the limiter only lets it move inward
        desired, problems = self._parse(command)
        freshness = self.watchdog.check(now)
        target: list[float] | None = None
        if self._e_stop is not None:
            reasons.append("e_stop")
        elif problems:
            reasons.extend(problems)
        elif freshness is not Freshness.FRESH:
            # Hold and stop both brake to rest where the arm is, within the acceleration
            # limit: the last target may lie far ahead of a rate-limited arm, and a dead
            # source must not keep moving it there (hold = MoveIt Servo's halt).
            reasons.append(freshness.value)
        else:
            target = [
                lower if x < lower else upper if x > upper else x
                for x, (lower, upper, *_) in zip(desired, self._joints, strict=True)
            ]
            if target != desired:
                reasons.extend(
                    f"position_limit:{name}"
                    for name, x, y in zip(self.joint_names, target, desired, strict=True)
                    if x != y
                )
            self._target = target
        held = bool(self._e_stop is not None or problems or freshness is not Freshness.FRESH)
        if target is None:
            self._target = None
            self._last_target = None
        scale = self._move(target, reasons)
        return FilterResult(np.array(self._q), held, tuple(reasons), scale)

    def _parse(self, values: object) -> tuple[list[float] | None, tuple[str, ...]]:
        """Finite floats in `joint_names` order, or None and what is wrong with them."""
        try:
            if isinstance(values, Mapping):
                unknown = [f"unknown_joint:{k}" for k in values if k not in self._index]
                missing = [f"missing_joint:{n}" for n in self.joint_names if n not in values]
                if unknown or missing:
                    return None, (*unknown, *missing)
                vector = np.array([float(values[n]) for n in self.joint_names])
            else:
                vector = np.asarray(values, dtype=np.float64)
        except Exception:  # any object can arrive here; none of them may crash the control loop
            return None, ("malformed",)
        if vector.shape != (self._n,):
            return None, ("wrong_length",)
        floats = vector.tolist()
        if not all(map(math.isfinite, floats)):
            return None, ("non_finite",)
        return floats, ()

    def _no_reference(self, state: object, problems: tuple[str, ...]) -> FilterResult:
        """No valid state has been seen, so there is no safe position to hold: output the
        finite parts of the state (mid-range elsewhere) and stay uninitialised."""
        middle = (self._lower + self._upper) / 2
        try:
            raw = np.asarray(state, dtype=np.float64)
            guess = np.where(np.isfinite(raw), raw, middle) if raw.shape == middle.shape else middle
        except Exception:  # same reasoning as in _parse
            guess = middle
        command = np.clip(guess, self._lower, self._upper)
        return FilterResult(command, True, ("bad_state", *problems), 0.0)

    def _move(self, target: list[float] | None, reasons: list[str]) -> float:
        """Advance the output one tick toward `target` (None: brake to rest where we are)."""
        q, v, adt, dt = self._q, self._v, self._adt, self.dt
        approach = 1.0
        if target is None:
            wanted = [0.0] * self._n
        else:
            wanted, approach = self._approach(target, q)
            if approach < 1.0:
                reasons.append("approach")
        # Windows are narrowed with conditional expressions: builtin min/max calls would cost
        # half the tick here.
        jlo, jhi, hard_lo, hard_hi = [], [], [], []
        for qi, vi, ai, (lower, upper, vmax, amax, dv, dadt) in zip(
            q, v, adt, self._joints, strict=True
        ):
            # Hard: velocity box and acceleration window around the last velocity (never
            # empty, because the last velocity lies in both).
            lo = vi - dv if vi - dv > -vmax else -vmax
            hi = vi + dv if vi + dv < vmax else vmax
            # Stop in time: v²/2a + v·dt <= distance to the limit keeps the next tick able to
            # brake within the acceleration window, so this bound stays feasible once it is met.
            gap = upper - qi
            stop = amax * (math.sqrt(dt * dt + 2 * gap / amax) - dt) if gap > 0 else 0.0
            if stop < hi:
                hi = stop if stop > lo else lo
            gap = qi - lower
            stop = -amax * (math.sqrt(dt * dt + 2 * gap / amax) - dt) if gap > 0 else 0.0
            if stop > lo:
                lo = stop if stop < hi else hi
            hard_lo.append(lo)
            hard_hi.append(hi)
            # Softest limit: jerk, as a window on the change of acceleration, clipped into the
            # rest.
            edge = vi + ai - dadt
            jlo.append(lo if edge < lo else hi if edge > hi else edge)
            edge = vi + ai + dadt
            jhi.append(lo if edge < lo else hi if edge > hi else edge)
        velocity, scale = self._scaled_into(wanted, jlo, jhi, reasons)
        speed = self.speed is not None and self.speed.active
        if self.barriers is not None or self.energy is not None or speed:
            arm = self._arm_slots
            cartesian = self._cartesian(
                np.array([velocity[i] for i in arm]),
                np.array([jlo[i] for i in arm]),
                np.array([jhi[i] for i in arm]),
                reasons,
                (hard_lo, hard_hi),
            )
            if cartesian is not None:
                for i, value in zip(arm, cartesian.tolist(), strict=True):
                    velocity[i] = value
                norm = math.hypot(*[wanted[i] for i in arm])
                scale = math.hypot(*cartesian.tolist()) / norm if norm > 0 else scale
        self._adt = [x - y for x, y in zip(velocity, v, strict=True)]
        self._v = velocity
        self._q = [x + y * dt for x, y in zip(q, velocity, strict=True)]
        return scale * approach

    def _approach(self, target: list[float], q: list[float]) -> tuple[list[float], float]:
        """The velocity that follows a moving target without overshooting a distant one.

        Jumping to the target in one tick is the wish, but from a large gap the limiter would
        accelerate all the way and then be unable to brake in time (a 0.8 rad step overshot by
        0.45 rad). So the wish is split into the target's own motion since the last tick (fed
        forward: tracking a trajectory is never slowed) and the gap still to close, whose speed
        is capped to what can be braked within that gap — or to a one-tick step that one
        tick of braking can stop. One factor for the arm keeps the motion's direction; the
        gripper gets its own. Returns the velocity and the arm's factor (1.0: not slowed).
        """
        previous, self._last_target = self._last_target, target
        dt = self.dt
        feed = (
            [0.0] * self._n
            if previous is None
            else [(x - y) / dt for x, y in zip(target, previous, strict=True)]
        )
        closing, ratios = [], []
        for x, qi, f, (*_, amax, dv, _dadt) in zip(target, q, feed, self._joints, strict=True):
            gap = (x - qi) / dt - f
            speed = gap if gap > 0 else -gap
            cap = amax * (math.sqrt(dt * dt + 2 * speed * dt / amax) - dt)
            if cap < dv:
                cap = speed if speed < dv else dv
            closing.append(gap)
            ratios.append(cap / speed if speed > _STILL and cap < speed else 1.0)
        arm_ratio = min((ratios[i] for i in self._arm_slots), default=1.0)
        for i in self._arm_slots:
            ratios[i] = arm_ratio
        wanted = [f + r * c for f, r, c in zip(feed, ratios, closing, strict=True)]
        return wanted, arm_ratio

    def _cartesian(
        self,
        nominal: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        reasons: list[str],
        hard: tuple[list[float], list[float]],
    ) -> np.ndarray | None:
        """The arm velocity after the Cartesian stages, or None if they left it; `hard` is
        the window without jerk (the speed cap outranks jerk, as braking does)."""
        q = np.array([self._q[i] for i in self._arm_slots])
        v = np.array([self._v[i] for i in self._arm_slots])
        brake = np.sign(v) * np.maximum(np.abs(v) - self._brake_step, 0.0)
        velocity, proven, floor = nominal, True, None
        if self.barriers is not None:
            floor = self.barriers.floor(q, lo, hi)
            velocity, proven, why = self.barriers.propose(q, nominal, lo, hi, floor)
            reasons.extend(why)
        if self.energy is not None:
            velocity, limited = self.energy.limit(brake, velocity, self.dt)
            if limited:
                reasons.append("energy")
                proven = False
        if self.speed is not None and self.speed.active:
            window = (np.array(hard[0])[self._arm_slots], np.array(hard[1])[self._arm_slots])
            velocity, why = self.speed.limit(
                q + 0.5 * self.dt * velocity, v, window, self._brake_step, velocity
            )
            if why:
                reasons.extend(why)
                proven = False
        if not proven and self.barriers is not None:
            velocity, shortened = self.barriers.settle(q, brake, velocity, floor)
            if shortened:
                reasons.append("barrier_brake")
        if self.energy is not None:
            self.energy.commit(velocity)
        return None if velocity is nominal else velocity

    def _scaled_into(
        self, wanted: list[float], lo: list[float], hi: list[float], reasons: list[str]
    ) -> tuple[list[float], float]:
        """`wanted` shrunk by one factor to fit [lo, hi] on the arm joints, if one exists;
        otherwise clipped joint by joint (the gripper is always clipped on its own)."""
        clipped = [
            a if w < a else b if w > b else w for w, a, b in zip(wanted, lo, hi, strict=True)
        ]
        if clipped == wanted:
            return wanted, 1.0
        s_lo, s_hi, scalable = 0.0, 1.0, True
        for i in self._arm_slots:
            w, a, b = wanted[i], lo[i], hi[i]
            if w > _STILL or w < -_STILL:
                r_lo, r_hi = (a / w, b / w) if w > 0 else (b / w, a / w)
                if r_hi < s_hi:
                    s_hi = r_hi
                if r_lo > s_lo:
                    s_lo = r_lo
            elif a > 0 or b < 0:  # a still joint that must move: no single factor fits
                scalable = False
        if scalable and s_lo <= s_hi:
            for i in self._arm_slots:  # the clip absorbs rounding only
                x = s_hi * wanted[i]
                clipped[i] = lo[i] if x < lo[i] else hi[i] if x > hi[i] else x
            if s_hi < 1.0:
                reasons.append("velocity_scaled")
            if any(clipped[i] != wanted[i] for i in self._own_slots):
                reasons.append("rate_limited")
            return clipped, s_hi
        reasons.append("rate_limited")
        norm = math.hypot(*[wanted[i] for i in self._arm_slots])
        speed = math.hypot(*[clipped[i] for i in self._arm_slots])
        return clipped, speed / norm if norm > 0 else 1.0
