"""Keeping the arm inside its workspace and out of obstacles, with bounded acceleration.

A velocity-level barrier filter alone is not enough once the arm cannot stop instantly: the
joint limiter brakes at most `a·dt` per tick, so a step that is safe now can carry the arm into
a barrier before it stops. This stage therefore keeps one invariant, tick by tick:

    braking from the commanded state (every joint slows by a·dt per tick until it stops) keeps
    every barrier at or above its floor, min(h_now, 0), at every tick of the stop.

Each barrier watches one tracked point x: the end effector, or with the whole-arm keep-out
the centre of a sphere covering a link (links.py, workspace.py). A candidate velocity is
accepted only if a bound proves that invariant for it; otherwise the arm brakes, and braking
needs no proof: its own stop is the tail of the stop proven earlier. For the end effector the
bound needs one forward kinematics and one Jacobian at the candidate's next position q'. With
δ_k the braking rollout's joint displacement after k more ticks (exact, no kinematics needed),
D its total per joint, c = ∇h(x')·J(q'), and R_i the lever arm of joint i for the point
(arm_model.py; 0 for joints that do not carry it):

    h(x(q' + δ_k)) >= h(x') + c·δ_k − ½·|δ_k|ᵀ·M·|δ_k|,   M_ij = ρ_max(i,j)
    ρ_m = |J(q')[:, m]| + Σ_{l>m} R_l·D_l

because h is convex with |∇h| <= 1 (workspace.py), and ∂²x/∂q_i∂q_j = z_i × (z_m × (x − p_m))
for m = max(i, j) (the joint nearer the hand) is at most x's distance from axis m: that is
|J[:, m]| now, and only the joints beyond m can change it, each by at most R_l per radian. The
linear term is signed, so only joints that move toward a barrier cost anything; the quadratic
term is the kinematics' curvature over the stop. When this fails, the same bound from a second
anchor, the end of the stop (one more kinematics evaluation), is tried too: each tick may use
whichever anchor proves more, since both bounds are valid. |δ|ᵀ·M·|δ| = Σ_m ρ_m·W_m with
W_m = S_m² − S²_{m−1}, S the running sum of |δ| over the joints: one matrix product for every
point and every tick of the stop.

The links' spheres are many (dozens of points against one), so they are proven more cheaply,
from the tick's own position q: the step and the whole stop after it are one path on which
every joint moves one way, so the bound holds from q with δ up to the step plus D. That needs
the links' kinematics once per tick, not per candidate, and charges the step too, which only
makes the links brake a little earlier than the end effector would. Most ticks need not even
that: if the bound from the last evaluation of the links, with every joint moving up to its
distance from there plus the farthest any velocity in the tick's window [lo, hi] and its stop
can take it, in either direction, keeps every link barrier >= 0, the links sit out the tick.

Candidates come from the nominal (joint-limited) velocity or, when that fails, from a CBF-QP
(quadprog, an exact dense active-set solver):

    minimise   ½‖q̇ − q̇_nom‖² + Σᵢ w·(sᵢ + ½sᵢ²)
    subject to cᵢ·q̇·(dt + τ) + sᵢ >= −γ·(hᵢ − floorᵢ − b) + e,   γ = min(α·dt, 1)
               lo <= q̇ <= hi   (the velocity, acceleration |q̇ − q̇_prev| <= a·dt, position
                                stopping and jerk window the joint limiter computed),  s >= 0

where τ = |q̇_nom|/2a − dt/2 stretches each step by the distance braking from it would add,
e is the curvature term of that stop (as the two-anchor check charges it) and b = 2 mm aims
inside the barrier. Rows whose constraint holds on the whole box [lo, hi] cannot be active and
are left out, so the QP has as many slacks as barriers within reach, not one per sphere and
obstacle. The QP is a good guess, not the guarantee: its solution is checked like any
candidate, and when it fails the step is shortened toward braking (lo <= braking <= hi always,
so every point between is within the joint limits too) until the check passes, or the arm
brakes.

Like the joint filter this is a software filter, not a safety-rated function. It sees the end
effector and, when configured, spheres covering the links (never better than that cover), and
trusts the obstacle geometry it is given.
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
# Per barrier, the row of its tracked point among the anchor's points; slice(None) when every
# barrier watches the one point there is, whose row then broadcasts.
Rows = np.ndarray | slice


class CartesianBarrierFilter:
    """Per-tick barrier stage for the arm joints; `SafetyFilter` drives it (see module doc).

    `acceleration` and `dt` must be the joint limiter's, so that the braking it reasons about is
    exactly the braking the limiter can always perform. `scene` watches the points `kinematics`
    tracks (the end effector, then any link spheres); `lever_arms` has one row per point
    (arm_model.lever_arms for the same points).
    """

    def __init__(
        self,
        kinematics: Kinematics,
        scene: BarrierSet,
        joint_names: Sequence[str],
        lever_arms: np.ndarray,
        acceleration: Sequence[float],
        dt: float,
        alpha: float = DEFAULT_ALPHA,
        slack_weight: float = DEFAULT_SLACK_WEIGHT,
    ) -> None:
        n, points = len(joint_names), kinematics.point_count
        lever = np.asarray(lever_arms, dtype=float)
        acc = np.asarray(acceleration, dtype=float)
        if lever.shape != (points, n) or acc.shape != (n,):
            raise ValueError(f"need {points}x{n} lever arms and {n} accelerations")
        if not (np.all(lever >= 0) and np.all(acc > 0)):
            raise ValueError("lever arms must be >= 0 and accelerations > 0")
        if not (dt > 0 and alpha > 0 and slack_weight > 0):
            raise ValueError("dt, alpha and slack_weight must be positive")
        if len(scene) and scene.points.max() >= points:
            raise ValueError(f"the scene watches points the kinematics does not track ({points})")
        self.kinematics = kinematics
        self.scene = scene
        self.joint_names = tuple(joint_names)
        self.dt = float(dt)
        self.velocity_step = acc * self.dt  # braking per tick, as the joint limiter's
        self._lever = lever
        self._gamma = min(alpha * self.dt, 1.0)
        self._acceleration = acc
        self.slack_weight = float(slack_weight)
        # The end effector's barriers alone (the scene's first): the ones every candidate is
        # evaluated for, on the end effector's cheaper kinematics.
        self._ee_scene = scene.end_effector()
        self._ee = slice(len(self._ee_scene))
        self._links = slice(len(self._ee_scene), None)
        self._near = False  # whether this tick checks the links' barriers
        # The last evaluation with the links: q, barrier values, rates and column norms.
        self._reference: tuple[np.ndarray, ...] | None = None
        # quadprog's matrices per number of barrier rows in the QP, built on first use.
        self._matrices: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Per position evaluated this tick: barrier values, their rates dh/dq, the points'
        # Jacobian column norms, and whether the links are in. The accepted candidate's next
        # position is the following tick's current one.
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}

    def floor(self, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Lowest value each barrier checked this tick may take from `q` on: 0, or h itself if
        already below. Every candidate velocity of the tick lies in [lo, hi].

        Called once per tick, first: it also forgets the positions of earlier ticks, and
        decides whether the links' barriers need checking at all (`_far`).
        """
        self._near = len(self._ee_scene) < len(self.scene) and not self._far(q, lo, hi)
        h = self._at(q, self._near)[0]
        self._cache = {q.tobytes(): self._cache[q.tobytes()]}
        return np.minimum(h, 0.0)

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
        names = (self.scene if self._near else self._ee_scene).names
        return velocity, False, tuple(dict.fromkeys(names[i] for i in active))

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
        speed = np.abs(velocity)
        direction = np.sign(velocity)
        ticks = np.floor(speed / self.velocity_step)
        total = (ticks * speed - self.velocity_step * ticks * (ticks + 1) / 2) * self.dt
        if self._near:  # the links, from q: see the module docstring
            whole = speed * self.dt + total
            if not self._links_hold(self._at(q, True), direction, whole, floor[self._links]):
                return False
            floor = floor[self._ee]
        h, rates, norms = self._at(q + velocity * self.dt, False)
        if (h < floor).any():
            return False
        if not speed.any():
            return True
        effect = rates * direction  # dh per unit of each joint's travel
        # Quick sufficient test on the whole stop: each joint's travel grows monotonically to
        # its total, so charging every harmful joint its total travel bounds every tick.
        rho = self._curvature(norms, total)
        if (self._charged(h, effect, rho, total, slice(None)) >= floor).all():
            return True
        # Exact rollout: joint travel after each further braking tick (each stops on its own).
        k = np.arange(1, int(ticks.max()) + 2)[:, None]
        travel = np.maximum(speed - k * self.velocity_step, 0.0).cumsum(axis=0) * self.dt
        from_here = h + travel @ effect.T - self._quadratic(rho, travel, slice(None))
        if (from_here.min(axis=0) >= floor).all():
            return True
        # Second anchor where the stop ends: every tick of it is then at most half the stop away
        # from a point whose kinematics is known, which quarters the curvature term.
        h_end, rates_end, norms_end = self._at(q + velocity * self.dt + total * direction, False)
        rest = total - travel  # still to go, per joint
        curvature = self._quadratic(self._curvature(norms_end, total), rest, slice(None))
        from_end = h_end - rest @ (rates_end * direction).T - curvature
        return bool((np.maximum(from_here, from_end).min(axis=0) >= floor).all())

    def _far(self, q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
        """Whether no velocity in [lo, hi], nor the stop after it, can take a link's barrier
        below 0, by the bound from the last evaluation with the links: the fastest candidate V
        moves each joint at most V·dt + V²/2a over its step and stop, in either direction."""
        if self._reference is None:
            return False
        q_ref, *evaluated = self._reference
        fastest = np.maximum(np.abs(lo), np.abs(hi))
        travel = np.abs(q - q_ref) + fastest * (self.dt + fastest / (2 * self._acceleration))
        return self._links_hold(evaluated, None, travel, 0.0)

    def _links_hold(
        self,
        evaluated: Sequence[np.ndarray],
        direction: np.ndarray | None,
        travel: np.ndarray,
        floor: np.ndarray | float,
    ) -> bool:
        """Whether the links' barriers stay >= floor while every joint moves up to `travel`
        from where `evaluated` (h, rates, norms) was, in `direction` (None: either way)."""
        h, rates, norms = evaluated
        links = self._links
        effect = -np.abs(rates[links]) if direction is None else rates[links] * direction
        rho = self._curvature(norms, travel)
        bound = self._charged(h[links], effect, rho, travel, self.scene.points[links])
        return bool((bound >= floor).all())

    def _charged(
        self, h: np.ndarray, effect: np.ndarray, rho: np.ndarray, travel: np.ndarray, rows: Rows
    ) -> np.ndarray:
        """The least each barrier can be after every joint moved up to `travel` from an anchor
        (values h, rates `effect` along the motion, curvature ρ): harmful joints charged in
        full, and the curvature term."""
        return h + np.minimum(effect, 0.0) @ travel - self._quadratic(rho, travel, rows)

    def _curvature(self, norms: np.ndarray, reach: np.ndarray) -> np.ndarray:
        """ρ per point and joint: |∂²x/∂q_i∂q_j| <= ρ_max(i,j) anywhere within `reach` (per
        joint) of the anchor whose Jacobian column norms are `norms`."""
        beyond = self._lever[: len(norms)] * reach
        return norms + beyond[:, ::-1].cumsum(axis=1)[:, ::-1] - beyond

    @staticmethod
    def _quadratic(rho: np.ndarray, travel: np.ndarray, rows: Rows) -> np.ndarray:
        """½|δ|ᵀ·M·|δ| for each travel |δ| (last axis: joints), per barrier (last axis), each
        barrier taking its point's ρ: Σ_m ρ_m·W_m with W_m = S_m² − S²_{m−1} and S the
        running sum of |δ| over the joints."""
        return ((travel * (travel.cumsum(axis=-1) - 0.5 * travel)) @ rho.T)[..., rows]

    def _at(self, q: np.ndarray, links: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Barrier values, their rates dh/dq (barriers, joints) and the tracked points' Jacobian
        column norms (points, joints) at `q`: of the end effector's barriers alone, on its
        cheaper kinematics, or with `links` of every barrier."""
        cached = self._cache.get(q.tobytes())
        if cached is not None and (cached[3] or not links):
            h, rates, norms, full = cached
            if full and not links:
                return h[self._ee], rates[self._ee], norms[:1]
            return h, rates, norms
        if links:
            positions, jacobians = self.kinematics.points_and_jacobians(q)
            h, gradients = self.scene.evaluate(positions)
            rates = (gradients[:, None, :] @ jacobians[self.scene.points])[:, 0]
        else:
            position, jacobian = self.kinematics.position_and_jacobian(q)
            h, gradients = self._ee_scene.evaluate(position[None])
            rates, jacobians = gradients @ jacobian, jacobian[None]
        norms = np.sqrt(np.einsum("pkn,pkn->pn", jacobians, jacobians))
        if links:
            self._reference = (q.copy(), h, rates, norms)
        self._cache[q.tobytes()] = (h, rates, norms, links)
        return h, rates, norms

    def _solve(
        self, q: np.ndarray, nominal: np.ndarray, lo: np.ndarray, hi: np.ndarray, floor: np.ndarray
    ) -> tuple[np.ndarray, list[int]]:
        """quadprog form: min ½zᵀGz − aᵀz s.t. Cᵀz >= b, z = [q̇, s]; returns the velocity and
        the barriers (of those checked this tick) whose rows are active."""
        h, rates, norms = self._at(q, self._near)
        lookahead = np.maximum(np.abs(nominal) / (2 * self._acceleration) - self.dt / 2, 0.0)
        travel = np.abs(nominal) * (self.dt + lookahead)
        # A quarter of the one-anchor curvature term: what `safe` charges with both anchors.
        rows = self.scene.points if self._near else slice(None)
        curvature = 0.25 * self._quadratic(self._curvature(norms, travel), travel, rows)
        coefficients = rates * (self.dt + lookahead)
        bound = -self._gamma * (h - floor - _BUFFER) + curvature
        lowest = np.minimum(coefficients * lo, coefficients * hi).sum(axis=1)
        near = np.flatnonzero(lowest < bound)
        if not len(near):  # no row can bind inside the box: the QP's optimum is the nominal
            return nominal, []
        n, b = len(nominal), len(near)
        hessian, constraints = self._qp(n, b)
        constraints[:n, :b] = coefficients[near].T
        linear = np.concatenate([nominal, np.full(b, -self.slack_weight)])
        lower = np.concatenate([bound[near], np.zeros(b), lo, -hi])
        z, _, _, _, _, active = quadprog.solve_qp(hessian, linear, constraints, lower)
        if not np.all(np.isfinite(z)):
            raise ValueError("non-finite QP solution")
        # The solver honours the box only to round-off; the joint limits are exact.
        return np.clip(z[:n], lo, hi), sorted({int(near[i - 1]) for i in active if 0 < i <= b})

    def _qp(self, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """quadprog's G and C for `b` barrier rows; `_solve` fills the rows' coefficients.
        Constraint columns: barrier rows + slack, s >= 0, q̇ >= lo, −q̇ >= −hi."""
        if b not in self._matrices:
            hessian = np.diag(np.concatenate([np.ones(n), np.full(b, self.slack_weight)]))
            constraints = np.zeros((n + b, 2 * b + 2 * n))
            constraints[n:, :b] = np.eye(b)
            constraints[n:, b : 2 * b] = np.eye(b)
            constraints[:n, 2 * b : 2 * b + n] = np.eye(n)
            constraints[:n, 2 * b + n :] = -np.eye(n)
            self._matrices[b] = (hessian, constraints)
        return self._matrices[b]
