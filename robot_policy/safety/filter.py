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
"obstacle:<name>", "barrier_brake") and the energy tank (energy.py, reason "energy"). Both move
the velocity only toward the braking step (every joint slowing by a·dt), which the joint limits
always admit, so the Cartesian stage never breaks a joint limit; barriers outrank jerk and the
energy budget, because braking always satisfies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robot_policy.safety.barrier import CartesianBarrierFilter
from robot_policy.safety.energy import EnergyTank
from robot_policy.safety.limits import GRIPPER, SafetyLimits
from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT, Freshness, Watchdog


def _clip(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """np.clip for the filter's 8-vectors: two ufuncs, a fifth of np.clip's Python overhead,
    which matters at a few microseconds per tick."""
    return np.minimum(np.maximum(x, lo), hi)


def _norm(x: np.ndarray) -> float:
    return math.sqrt(float(x @ x))


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
    """Stateful filter: `step` once per control tick with the desired and measured positions."""

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
    ) -> None:
        """`barriers` and `energy` add the Cartesian stage (see the module docstring); they act
        on the non-gripper joints, which must then be the robot's arm joints in URDF order."""
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
        self._lower, self._upper = lim["lower"], lim["upper"]
        self._vmax = lim["velocity"]
        self._amax = lim["acceleration"]
        self._dv = lim["acceleration"] * dt  # largest velocity change per tick
        self._dadt = lim["jerk"] * dt * dt  # largest change of (acceleration * dt) per tick
        # The arm moves as one vector so a Cartesian path keeps its shape when slowed down;
        # the gripper is limited on its own so a slow gripper does not slow the arm.
        self._arm = np.array([n != GRIPPER for n in names])
        arm_names = tuple(n for n in names if n != GRIPPER)
        if barriers is not None and not (
            barriers.joint_names == arm_names
            and barriers.dt == self.dt
            and np.array_equal(barriers.velocity_step, self._dv[self._arm])
        ):
            raise ValueError("barriers must be built for these arm joints, limits and dt")
        if energy is not None and energy.inertia.shape != (len(arm_names),):
            raise ValueError(f"energy tank needs one inertia per arm joint {arm_names}")
        self.barriers = barriers
        self.energy = energy
        self._q: np.ndarray | None = None  # last output position
        self._v = np.zeros(len(names))  # last output velocity
        self._adt = np.zeros(len(names))  # last output acceleration * dt
        self._target: np.ndarray | None = None  # last accepted command, for watchdog_hold
        self._last_target: np.ndarray | None = None  # last tick's target, for feed-forward
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
        target: np.ndarray | None = None
        if self._e_stop is not None:
            reasons.append("e_stop")
        elif problems:
            reasons.extend(problems)
        elif freshness is not Freshness.FRESH:
            reasons.append(freshness.value)
            if freshness is Freshness.HOLD:
                target = self._target
        else:
            target = _clip(desired, self._lower, self._upper)
            if (target != desired).any():
                clipped = np.flatnonzero(target != desired)
                reasons.extend(f"position_limit:{self.joint_names[i]}" for i in clipped)
            self._target = target
        held = bool(self._e_stop is not None or problems or freshness is not Freshness.FRESH)
        if target is None:
            self._target = None
            self._last_target = None
        scale = self._move(target, reasons)
        return FilterResult(self._q.copy(), held, tuple(reasons), scale)

    def _parse(self, values: object) -> tuple[np.ndarray | None, tuple[str, ...]]:
        """A finite float64 vector in `joint_names` order, or None and what is wrong with it."""
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
        if vector.shape != self._v.shape:
            return None, ("wrong_length",)
        if not np.isfinite(vector).all():
            return None, ("non_finite",)
        return vector, ()

    def _no_reference(self, state: object, problems: tuple[str, ...]) -> FilterResult:
        """No valid state has been seen, so there is no safe position to hold: output the
        finite parts of the state (mid-range elsewhere) and stay uninitialised."""
        middle = (self._lower + self._upper) / 2
        try:
            raw = np.asarray(state, dtype=np.float64)
            guess = np.where(np.isfinite(raw), raw, middle) if raw.shape == middle.shape else middle
        except Exception:  # same reasoning as in _parse
            guess = middle
        command = _clip(guess, self._lower, self._upper)
        return FilterResult(command, True, ("bad_state", *problems), 0.0)

    def _move(self, target: np.ndarray | None, reasons: list[str]) -> float:
        """Advance the output one tick toward `target` (None: brake to rest where we are)."""
        q, v, adt, dt = self._q, self._v, self._adt, self.dt
        approach = 1.0
        if target is None:
            wanted = np.zeros_like(v)
        else:
            wanted, approach = self._approach(target, q)
            if approach < 1.0:
                reasons.append("approach")
        # Hard: velocity box and acceleration window around the last velocity (never empty,
        # because the last velocity lies in both).
        lo = np.maximum(-self._vmax, v - self._dv)
        hi = np.minimum(self._vmax, v + self._dv)
        # Stop in time: v²/2a + v·dt <= distance to the limit keeps the next tick able to brake
        # within the acceleration window, so this bound stays feasible once it is met.
        hi = _clip(self._stopping_speed(self._upper - q), lo, hi)
        lo = _clip(-self._stopping_speed(q - self._lower), lo, hi)
        # Softest limit: jerk, as a window on the change of acceleration, clipped into the rest.
        jlo = _clip(v + adt - self._dadt, lo, hi)
        jhi = _clip(v + adt + self._dadt, lo, hi)
        velocity, scale = self._scaled_into(wanted, jlo, jhi, reasons)
        if self.barriers is not None or self.energy is not None:
            arm = self._arm
            cartesian = self._cartesian(velocity[arm], jlo[arm], jhi[arm], reasons)
            if cartesian is not None:
                velocity = velocity.copy()
                velocity[arm] = cartesian
                norm = float(_norm(wanted[arm]))
                scale = float(_norm(cartesian)) / norm if norm > 0 else scale
        self._adt = velocity - v
        self._v = velocity
        self._q = q + velocity * dt
        return scale * approach

    def _approach(self, target: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float]:
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
        feed = np.zeros_like(target) if previous is None else (target - previous) / dt
        closing = (target - q) / dt - feed
        speed = np.abs(closing)
        cap = np.maximum(self._stopping_speed(speed * dt), np.minimum(speed, self._dv))
        ratio = np.ones_like(speed)
        moving = speed > 1e-12
        ratio[moving] = np.minimum(1.0, cap[moving] / speed[moving])
        arm = self._arm
        arm_ratio = float(ratio[arm].min(initial=1.0))
        ratio[arm] = arm_ratio
        return feed + ratio * closing, arm_ratio

    def _cartesian(
        self, nominal: np.ndarray, lo: np.ndarray, hi: np.ndarray, reasons: list[str]
    ) -> np.ndarray | None:
        """The arm velocity after the barrier and energy stages, or None if they left it."""
        q, v = self._q[self._arm], self._v[self._arm]
        brake = np.sign(v) * np.maximum(np.abs(v) - self._dv[self._arm], 0.0)
        velocity, proven, floor = nominal, True, None
        if self.barriers is not None:
            floor = self.barriers.floor(q)
            velocity, proven, why = self.barriers.propose(q, nominal, lo, hi, floor)
            reasons.extend(why)
        if self.energy is not None:
            velocity, limited = self.energy.limit(brake, velocity, self.dt)
            if limited:
                reasons.append("energy")
                proven = False
        if not proven and self.barriers is not None:
            velocity, shortened = self.barriers.settle(q, brake, velocity, floor)
            if shortened:
                reasons.append("barrier_brake")
        if self.energy is not None:
            self.energy.commit(velocity)
        return None if velocity is nominal else velocity

    def close(self) -> None:
        """Release the barrier stage's kinematics (a PyBullet client), if there is one."""
        if self.barriers is not None:
            self.barriers.close()

    def _stopping_speed(self, distance: np.ndarray) -> np.ndarray:
        """Largest speed from which braking at the acceleration limit covers `distance`."""
        a, dt = self._amax, self.dt
        return a * (np.sqrt(dt * dt + 2 * np.maximum(distance, 0.0) / a) - dt)

    def _scaled_into(
        self, wanted: np.ndarray, lo: np.ndarray, hi: np.ndarray, reasons: list[str]
    ) -> tuple[np.ndarray, float]:
        """`wanted` shrunk by one factor to fit [lo, hi] on the arm joints, if one exists;
        otherwise clipped joint by joint (the gripper is always clipped on its own)."""
        clipped = _clip(wanted, lo, hi)
        if (clipped == wanted).all():
            return wanted, 1.0
        arm = self._arm
        w, a_lo, a_hi = wanted[arm], lo[arm], hi[arm]
        moving = np.abs(w) > 1e-12  # smaller speeds would overflow the ratios below
        if (a_lo[~moving] <= 0).all() and (a_hi[~moving] >= 0).all():
            wm = w[moving]
            r_lo, r_hi = a_lo[moving] / wm, a_hi[moving] / wm
            s_hi = min(1.0, float(np.maximum(r_lo, r_hi).min(initial=np.inf)))
            s_lo = max(0.0, float(np.minimum(r_lo, r_hi).max(initial=-np.inf)))
            if s_lo <= s_hi:
                clipped[arm] = _clip(s_hi * w, a_lo, a_hi)  # absorbs rounding only
                if s_hi < 1.0:
                    reasons.append("velocity_scaled")
                if (clipped[~arm] != wanted[~arm]).any():
                    reasons.append("rate_limited")
                return clipped, s_hi
        reasons.append("rate_limited")
        norm = float(_norm(w))
        return clipped, float(_norm(clipped[arm]) / norm) if norm > 0 else 1.0
