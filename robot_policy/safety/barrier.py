"""Keeping the end effector inside its workspace and out of obstacles, with bounded acceleration.

A velocity-level barrier filter alone is not enough once the arm cannot stop instantly: the
joint limiter brakes at most `a·dt` per tick, so a step that is safe now can carry the arm into
a barrier before it stops. This stage therefore keeps one invariant, tick by tick:

    braking from the commanded state (every joint slows by a·dt per tick until it stops) keeps
    every barrier at or above its floor, min(h_now, 0), at every tick of the stop.

A candidate velocity is accepted only if a bound proves that invariant for it; otherwise the arm
brakes, and braking needs no proof: its own stop is the tail of the stop proven earlier. The
bound needs one forward kinematics and one Jacobian at the candidate's next position q'. With
δ_k the braking rollout's joint displacement after k more ticks (exact, no kinematics needed),
D its total per joint, c = ∇h(x')·J(q'), and R_i the lever arm of joint i (arm_model.py):

    h(x(q' + δ_k)) >= h(x') + c·δ_k − ½·|δ_k|ᵀ·M·|δ_k|,   M_ij = ρ_max(i,j)
    ρ_m = |J(q')[:, m]| + Σ_{l>m} R_l·D_l

because h is convex with |∇h| <= 1 (workspace.py), and ∂²x/∂q_i∂q_j = z_i × (z_m × (x − p_m))
for m = max(i, j) (the joint nearer the hand) is at most x's distance from axis m: that is
|J[:, m]| now, and only the joints beyond m can change it, each by at most R_l per radian. The
linear term is signed, so only joints that move toward a barrier cost anything; the quadratic
term is the kinematics' curvature over the stop. When this fails, the same bound from a second
anchor, the end of the stop (one more kinematics evaluation), is tried too: each tick may use
whichever anchor proves more, since both bounds are valid.

Candidates come from the nominal (joint-limited) velocity or, when that fails, from a CBF-QP
(quadprog, an exact dense active-set solver):

    minimise   ½‖q̇ − q̇_nom‖² + Σᵢ w·(sᵢ + ½sᵢ²)
    subject to cᵢ·q̇·(dt + τ) + sᵢ >= −γ·(hᵢ − floorᵢ − b) + e,   γ = min(α·dt, 1)
               lo <= q̇ <= hi   (the velocity, acceleration |q̇ − q̇_prev| <= a·dt, position
                                stopping and jerk window the joint limiter computed),  s >= 0

where τ = |q̇_nom|/2a − dt/2 stretches each step by the distance braking from it would add,
e is the curvature term of that stop (as the two-anchor check charges it) and b = 2 mm aims
inside the barrier. The QP is a good
guess, not the guarantee: its solution is checked like any candidate, and when it fails the step
is shortened toward braking (lo <= braking <= hi always, so every point between is within the
joint limits too) until the check passes, or the arm brakes.

Like the joint filter this is a software filter, not a safety-rated function. It sees only the
end-effector point, not the links, and trusts the obstacle geometry it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import quadprog

from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety.workspace import BarrierSet

DEFAULT_ALPHA = 50.0  # 1/s: a barrier may shrink by at most α·dt of itself per tick
DEFAULT_SLACK_WEIGHT = 1e4
_BUFFER = 2e-3  # m the QP aims inside each barrier, so its solution usually passes the check
_SHORTENINGS = 2  # candidate, then 1/2, 1/4 of the way from braking, then braking


class CartesianBarrierFilter:
    """Per-tick barrier stage for the arm joints; `SafetyFilter` drives it (see module doc).

    `acceleration` and `dt` must be the joint limiter's, so that the braking it reasons about is
    exactly the braking the limiter can always perform.
    """

    def __init__(
        self,
        kinematics: Kinematics,
        scene: BarrierSet,
        joint_names: Sequence[str],
        lever_arms: Sequence[float],
        acceleration: Sequence[float],
        dt: float,
        alpha: float = DEFAULT_ALPHA,
        slack_weight: float = DEFAULT_SLACK_WEIGHT,
    ) -> None:
        n = len(joint_names)
        lever = np.asarray(lever_arms, dtype=float)
        acc = np.asarray(acceleration, dtype=float)
        if lever.shape != (n,) or acc.shape != (n,) or not (np.all(lever >= 0) and np.all(acc > 0)):
            raise ValueError(f"need {n} lever arms >= 0 and {n} accelerations > 0")
        if not (dt > 0 and alpha > 0 and slack_weight > 0):
            raise ValueError("dt, alpha and slack_weight must be positive")
        self.kinematics = kinematics
        self.scene = scene
        self.joint_names = tuple(joint_names)
        self.dt = float(dt)
        self.velocity_step = acc * self.dt  # braking per tick, as the joint limiter's
        self._lever = lever
        self._downstream = np.maximum.outer(np.arange(n), np.arange(n))
        self._gamma = min(alpha * self.dt, 1.0)
        self._acceleration = acc
        self.slack_weight = float(slack_weight)
        # quadprog's matrices for z = [q̇ (n), s (b)], built once; `_solve` fills the barrier
        # rows. Constraint columns: barrier rows + slack, s >= 0, q̇ >= lo, −q̇ >= −hi.
        b = len(scene)
        self._hessian = np.diag(np.concatenate([np.ones(n), np.full(b, float(slack_weight))]))
        self._constraints = np.zeros((n + b, 2 * b + 2 * n))
        self._constraints[n:, :b] = np.eye(b)
        self._constraints[n:, b : 2 * b] = np.eye(b)
        self._constraints[:n, 2 * b : 2 * b + n] = np.eye(n)
        self._constraints[:n, 2 * b + n :] = -np.eye(n)
        # Barrier values, gradients and Jacobian per position evaluated this tick: the accepted
        # candidate's next position is the following tick's current one.
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def floor(self, q: np.ndarray) -> np.ndarray:
        """Lowest value each barrier may take from `q` on: 0, or h itself if already below.

        Called once per tick, first: it also forgets the positions of earlier ticks.
        """
        current = self._at(q)
        self._cache = {q.tobytes(): current}
        return np.minimum(current[0], 0.0)

    def propose(
        self, q: np.ndarray, nominal: np.ndarray, lo: np.ndarray, hi: np.ndarray, floor: np.ndarray
    ) -> tuple[np.ndarray, bool, tuple[str, ...]]:
        """(velocity, whether it is proven safe, reasons): `nominal` if it passes the check,
        else the QP's solution (unproven; `settle` decides)."""
        if self.safe(q, nominal, floor):
            return nominal, True, ()
        try:
            velocity, active = self._solve(q, nominal, lo, hi, floor)
        except ValueError:  # quadprog: "constraints are inconsistent" / non-finite data
            return nominal, False, ("barrier_qp_failed",)
        return velocity, False, tuple(self.scene.names[i] for i in active)

    def settle(
        self, q: np.ndarray, brake: np.ndarray, candidate: np.ndarray, floor: np.ndarray
    ) -> tuple[np.ndarray, bool]:
        """(the first of candidate, then points ever closer to `brake`, that passes the check,
        or `brake`; whether it had to shorten)."""
        for halvings in range(_SHORTENINGS + 1):
            velocity = brake + 0.5**halvings * (candidate - brake)
            if self.safe(q, velocity, floor):
                return velocity, halvings > 0
        return brake, True

    def safe(self, q: np.ndarray, velocity: np.ndarray, floor: np.ndarray) -> bool:
        """Whether stepping with `velocity` and then braking provably keeps h >= floor."""
        h, gradients, jacobian = self._at(q + velocity * self.dt)
        if np.any(h < floor):
            return False
        speed = np.abs(velocity)
        if not speed.any():
            return True
        direction = np.sign(velocity)
        effect = (gradients @ jacobian) * direction  # dh per unit of each joint's travel
        # Quick sufficient test on the whole stop: each joint's travel grows monotonically to
        # its total, so charging every harmful joint its total travel bounds every tick.
        ticks = np.floor(speed / self.velocity_step)
        total = (ticks * speed - self.velocity_step * ticks * (ticks + 1) / 2) * self.dt
        bound = self._curvature(jacobian, total)
        curvature = 0.5 * total @ bound @ total
        if np.all(h + np.minimum(effect, 0.0) @ total - curvature >= floor):
            return True
        # Exact rollout: joint travel after each further braking tick (each stops on its own).
        k = np.arange(1, int(ticks.max()) + 2)[:, None]
        travel = np.cumsum(np.maximum(speed - k * self.velocity_step, 0.0), axis=0) * self.dt
        curvature = 0.5 * np.sum((travel @ bound) * travel, axis=1)
        from_here = h + travel @ effect.T - curvature[:, None]
        if np.all(from_here.min(axis=0) >= floor):
            return True
        # Second anchor where the stop ends: every tick of it is then at most half the stop away
        # from a point whose kinematics is known, which quarters the curvature term.
        h_end, gradients_end, jacobian_end = self._at(q + velocity * self.dt + total * direction)
        rest = total - travel  # still to go, per joint
        curvature = 0.5 * np.sum((rest @ self._curvature(jacobian_end, total)) * rest, axis=1)
        from_end = h_end - rest @ ((gradients_end @ jacobian_end) * direction).T
        worst = np.maximum(from_here, from_end - curvature[:, None]).min(axis=0)
        return bool(np.all(worst >= floor))

    def _curvature(self, jacobian: np.ndarray, travel: np.ndarray) -> np.ndarray:
        """M with |∂²x/∂q_i∂q_j| <= M_ij anywhere within `travel` (per joint) of here."""
        beyond = np.cumsum((self._lever * travel)[::-1])[::-1] - self._lever * travel
        return (np.sqrt(np.sum(jacobian * jacobian, axis=0)) + beyond)[self._downstream]

    def _at(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Barrier values, their gradients and the end-effector Jacobian at `q`."""
        key = q.tobytes()
        if key not in self._cache:
            position, jacobian = self.kinematics.position_and_jacobian(q)
            self._cache[key] = (*self.scene.evaluate(position), jacobian)
        return self._cache[key]

    def _solve(
        self, q: np.ndarray, nominal: np.ndarray, lo: np.ndarray, hi: np.ndarray, floor: np.ndarray
    ) -> tuple[np.ndarray, list[int]]:
        """quadprog form: min ½zᵀGz − aᵀz s.t. Cᵀz >= b, z = [q̇, s]."""
        h, gradients, jacobian = self._at(q)
        n, b = len(nominal), len(h)
        lookahead = np.maximum(np.abs(nominal) / (2 * self._acceleration) - self.dt / 2, 0.0)
        travel = np.abs(nominal) * (self.dt + lookahead)
        # A quarter of the one-anchor curvature term: what `safe` charges with both anchors.
        curvature = 0.125 * travel @ self._curvature(jacobian, travel) @ travel
        self._constraints[:n, :b] = ((gradients @ jacobian) * (self.dt + lookahead)).T
        bound = -self._gamma * (h - floor - _BUFFER) + curvature
        linear = np.concatenate([nominal, np.full(b, -self.slack_weight)])
        lower = np.concatenate([bound, np.zeros(b), lo, -hi])
        z, _, _, _, _, active = quadprog.solve_qp(self._hessian, linear, self._constraints, lower)
        if not np.all(np.isfinite(z)):
            raise ValueError("non-finite QP solution")
        # The solver honours the box only to round-off; the joint limits are exact.
        return np.clip(z[:n], lo, hi), sorted({int(i) - 1 for i in active if 0 < i <= b})
