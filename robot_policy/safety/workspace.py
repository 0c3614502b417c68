"""Cartesian safety for the end effector: a workspace box and obstacle barriers, via a CBF-QP.

Each constraint is a barrier h(x) >= 0 on the end-effector position x (signed distance minus a
margin). Per tick the desired joint step becomes a nominal velocity, and the smallest change to
it that keeps every barrier from shrinking faster than a fixed fraction per tick is found by a
quadratic program (quadprog, an exact dense active-set solver: the problem has 7 joints and a
dozen constraints, where an exact answer costs microseconds and needs no tolerances):

    minimise   ½‖q̇ − q̇_nom‖² + Σᵢ w·(sᵢ + ½sᵢ²)
    subject to ∇hᵢ(x)·J(q)·q̇·dt + sᵢ >= −γ·(hᵢ(x) − b),   γ = min(α·dt, 1), b = 2 mm
               −v_max <= q̇ <= v_max,   s >= 0

The slack s keeps the problem feasible when barriers conflict (q̇ = 0 with enough slack always
fits); its linear term makes the penalty exact, so slack stays zero whenever the barriers can be
met. All barriers here are convex in x, so the linearisation under-estimates them; the only
error left is the curvature of the kinematics over one tick, which a final check on the true
forward kinematics removes by shortening the step until no barrier ends below
min(h_now, 0) (q̇ = 0 always passes). The result therefore keeps the end effector safe under the
FK model, tick by tick, for any command.

Like the joint filter this is a software filter, not a safety-rated function. It sees only the
end-effector point, not the links, and trusts the obstacle geometry it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import quadprog

from robot_policy.robots.description import RobotDescription
from robot_policy.robots.kinematics import Kinematics

DEFAULT_MARGIN = 0.02  # m kept from obstacles, as MoveIt's scene proximity default
DEFAULT_ALPHA = 50.0  # 1/s: a barrier may shrink by at most α·dt of itself per tick
DEFAULT_SLACK_WEIGHT = 1e4
_SLACK_REPORT = 1e-9  # slack (m per tick) below this is solver round-off, not a violation
# The QP aims this far (m) inside each barrier so that the kinematics' curvature over one tick
# (about 1 mm at full Panda speed and 100 Hz) rarely reaches the true boundary and the
# step-shortening fallback stays the exception.
_BUFFER = 2e-3
_STEP_HALVINGS = 8  # shortening the step 2^-8 leaves a curvature error far below 1 µm


@dataclass(frozen=True)
class Sphere:
    """Solid ball the end effector keeps out of."""

    center: tuple[float, float, float]
    radius: float

    def barrier(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        offset = x - np.asarray(self.center)
        distance = float(np.linalg.norm(offset))
        if distance == 0.0:  # at the centre every direction leads out equally; pick up
            return -self.radius, np.array([0.0, 0.0, 1.0])
        return distance - self.radius, offset / distance


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box the end effector keeps out of."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def barrier(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        low, high = np.asarray(self.low), np.asarray(self.high)
        outside = x - np.clip(x, low, high)
        distance = float(np.linalg.norm(outside))
        if distance > 0.0:
            return distance, outside / distance
        # Inside: the way out is through the nearest face.
        gaps = np.concatenate([x - low, high - x])
        face = int(np.argmin(gaps))
        gradient = np.zeros(3)
        gradient[face % 3] = -1.0 if face < 3 else 1.0
        return -float(gaps[face]), gradient


@dataclass(frozen=True)
class Plane:
    """Half-space boundary (e.g. a table top): the end effector stays on the `normal` side."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def barrier(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        normal = np.asarray(self.normal) / np.linalg.norm(self.normal)
        return float(normal @ (x - np.asarray(self.point))), normal


Obstacle = Sphere | Box | Plane
_AXES = "xyz"


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box the end effector stays inside; each face is its own barrier."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def __post_init__(self) -> None:
        if not all(lo < hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(f"workspace low {self.low} must be below high {self.high}")

    def faces(self) -> list[tuple[str, Plane]]:
        named = []
        for axis in range(3):
            normal = np.eye(3)[axis]
            named.append((f"workspace:{_AXES[axis]}_min", Plane(self.low, tuple(normal))))
            named.append((f"workspace:{_AXES[axis]}_max", Plane(self.high, tuple(-normal))))
        return named


@dataclass(frozen=True, slots=True)
class CartesianResult:
    """The corrected arm command, and why it differs from the desired one.

    `command` is None only when the measured state itself is unusable (non-finite or the wrong
    shape); then `held` is True and the caller must hold by its own means. A bad desired command
    or a solver failure yields `held` with `command` equal to the measured position.
    `velocity` is the joint velocity the command implies over `dt`.
    """

    command: np.ndarray | None
    velocity: np.ndarray
    held: bool
    reasons: tuple[str, ...]


class CartesianBarrierFilter:
    """Per-tick CBF-QP on the end-effector position; see the module docstring for the maths."""

    def __init__(
        self,
        kinematics: Kinematics,
        max_velocity: Sequence[float],
        workspace: WorkspaceBox | None = None,
        obstacles: Sequence[tuple[str, Obstacle]] = (),
        margin: float = DEFAULT_MARGIN,
        alpha: float = DEFAULT_ALPHA,
        slack_weight: float = DEFAULT_SLACK_WEIGHT,
    ) -> None:
        self.kinematics = kinematics
        self.max_velocity = np.asarray(max_velocity, dtype=float)
        if self.max_velocity.shape != (7,) or not np.all(self.max_velocity > 0):
            raise ValueError(f"max_velocity: need 7 positive values, got {max_velocity!r}")
        if not (alpha > 0 and slack_weight > 0 and margin >= 0):
            raise ValueError("alpha and slack_weight must be positive, margin non-negative")
        # The workspace box is the limit itself; obstacles are inflated by the margin. Planes
        # (the box faces, a table) are evaluated as one matrix product, the rest one by one.
        named: list[tuple[str, Obstacle, float]] = [
            (name, plane, 0.0) for name, plane in (workspace.faces() if workspace else [])
        ] + [(name, obstacle, float(margin)) for name, obstacle in obstacles]
        planes = [(n, o, m) for n, o, m in named if isinstance(o, Plane)]
        self._shapes = [(n, o, m) for n, o, m in named if not isinstance(o, Plane)]
        self._names = [n for n, _, _ in planes] + [n for n, _, _ in self._shapes]
        normals = np.array([o.normal for _, o, _ in planes], dtype=float).reshape(-1, 3)
        self._normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        points = np.array([o.point for _, o, _ in planes], dtype=float).reshape(-1, 3)
        self._offsets = np.einsum("ij,ij->i", self._normals, points) + [m for _, _, m in planes]
        self.alpha = float(alpha)
        self.slack_weight = float(slack_weight)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, object],
        description: RobotDescription,
        kinematics: Kinematics | None = None,
    ) -> CartesianBarrierFilter:
        """Build from a YAML-style dict; unknown keys raise so a typo cannot disable a limit.

        Keys: `workspace: {low: [x,y,z], high: [x,y,z]}`, `obstacles: [{type: sphere|box|plane,
        name?, center/radius | low/high | point/normal}]`, `margin`, `alpha`, `slack_weight`,
        `max_velocity` (7 values; default the URDF's).
        """
        known = {"workspace", "obstacles", "margin", "alpha", "slack_weight", "max_velocity"}
        _reject_unknown(config, known, "cartesian safety")
        workspace = None
        if "workspace" in config:
            box = config["workspace"]
            _reject_unknown(box, {"low", "high"}, "workspace")
            workspace = WorkspaceBox(_vec3(box["low"]), _vec3(box["high"]))
        obstacles = [_obstacle(i, spec) for i, spec in enumerate(config.get("obstacles", []))]
        names = [name for name, _ in obstacles]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate obstacle names in {names}")
        return cls(
            kinematics if kinematics is not None else Kinematics(description),
            config.get("max_velocity", [j.max_velocity for j in description.arm]),
            workspace,
            obstacles,
            float(config.get("margin", DEFAULT_MARGIN)),
            float(config.get("alpha", DEFAULT_ALPHA)),
            float(config.get("slack_weight", DEFAULT_SLACK_WEIGHT)),
        )

    def close(self) -> None:
        """Release the kinematics' PyBullet client."""
        self.kinematics.close()

    def barriers(self, x: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Names, values h (m) and gradients dh/dx (n, 3) of every barrier at `x`."""
        values = [self._normals @ x - self._offsets]
        gradients = [self._normals]
        for _, shape, margin in self._shapes:
            h, gradient = shape.barrier(x)
            values.append([h - margin])
            gradients.append(gradient[None])
        return self._names, np.concatenate(values), np.concatenate(gradients)

    def correct(self, q: object, q_des: object, dt: float) -> CartesianResult:
        """The arm command nearest `q_des` that keeps the end effector safe; never raises."""
        zero = np.zeros(7)
        current = _as_joints(q)
        if current is None:
            return CartesianResult(None, zero, True, ("cartesian:bad_state",))
        desired = _as_joints(q_des)
        if desired is None:
            return CartesianResult(current, zero, True, ("cartesian:bad_command",))
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            dt = float("nan")
        if not (np.isfinite(dt) and dt > 0):
            return CartesianResult(current, zero, True, ("cartesian:bad_dt",))
        try:
            return self._correct(current, desired, dt)
        except (ValueError, np.linalg.LinAlgError):  # quadprog's "inconsistent"/"not PD"
            return CartesianResult(current, zero, True, ("cartesian:qp_failed",))

    def _correct(self, q: np.ndarray, q_des: np.ndarray, dt: float) -> CartesianResult:
        reasons: list[str] = []
        nominal = (q_des - q) / dt
        # Slow the whole vector, not each joint, so the joint-space direction survives.
        ratio = float(np.max(np.abs(nominal) / self.max_velocity))
        if ratio > 1.0:
            nominal = nominal / ratio
            reasons.append("cartesian:velocity_scaled")
        x = self.kinematics.ee_position(q)
        names, h, gradients = self.barriers(x)
        rows = gradients @ self.kinematics.jacobian(q) * dt  # change of h per unit q̇
        bound = -min(self.alpha * dt, 1.0) * (h - _BUFFER)
        velocity = nominal
        if np.any(rows @ nominal < bound):
            velocity, slack, active = self._solve(nominal, rows, bound)
            reasons.extend(names[i] for i in active)
            if np.any(slack > _SLACK_REPORT):
                reasons.append("cartesian:slack_used")
        velocity, shortened = self._shorten(q, velocity, h, dt)
        if shortened:
            reasons.append("cartesian:step_shortened")
        if not reasons:
            return CartesianResult(q_des.copy(), velocity, False, ())
        return CartesianResult(q + velocity * dt, velocity, False, tuple(reasons))

    def _solve(
        self, nominal: np.ndarray, rows: np.ndarray, bound: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """quadprog form: min ½zᵀGz − aᵀz s.t. Cᵀz >= b, z = [q̇, s]."""
        n = len(bound)
        w = self.slack_weight
        hessian = np.diag(np.concatenate([np.ones(7), np.full(n, w)]))
        linear = np.concatenate([nominal, np.full(n, -w)])
        constraints = np.zeros((2 * n + 14, 7 + n))
        constraints[:n, :7] = rows  # barrier rows, relaxed by their slack ...
        constraints[:n, 7:] = np.eye(n)
        constraints[n : 2 * n, 7:] = np.eye(n)  # ... which is non-negative
        constraints[2 * n : 2 * n + 7, :7] = np.eye(7)  # q̇ >= −v_max
        constraints[2 * n + 7 :, :7] = -np.eye(7)  # −q̇ >= −v_max
        lower = np.concatenate([bound, np.zeros(n), -self.max_velocity, -self.max_velocity])
        z, _, _, _, _, active = quadprog.solve_qp(hessian, linear, constraints.T, lower)
        if not np.all(np.isfinite(z)):
            raise ValueError("non-finite QP solution")
        barrier_active = sorted({int(i) - 1 for i in active if 0 < i <= n})
        return z[:7], z[7:], barrier_active

    def _shorten(
        self, q: np.ndarray, velocity: np.ndarray, h: np.ndarray, dt: float
    ) -> tuple[np.ndarray, bool]:
        """Halve the step until the true FK keeps every barrier at or above min(h, 0)."""
        floor = np.minimum(h, 0.0)
        for halvings in range(_STEP_HALVINGS + 1):
            step = velocity * 0.5**halvings
            _, h_next, _ = self.barriers(self.kinematics.ee_position(q + step * dt))
            if np.all(h_next >= floor):
                return step, halvings > 0
        return np.zeros(7), True


def _as_joints(values: object) -> np.ndarray | None:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.shape != (7,) or not np.all(np.isfinite(array)):
        return None
    return array.copy()


def _vec3(values: object) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=float)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"need 3 finite numbers, got {values!r}")
    return tuple(float(v) for v in array)


def _reject_unknown(config: object, known: set[str], what: str) -> None:
    if not isinstance(config, Mapping):
        raise ValueError(f"{what}: expected a mapping, got {config!r}")
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; known: {sorted(known)}")


def _obstacle(index: int, spec: object) -> tuple[str, Obstacle]:
    fields = {"sphere": {"center", "radius"}, "box": {"low", "high"}, "plane": {"point", "normal"}}
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in fields:
        raise ValueError(f"obstacle {index}: type must be one of {sorted(fields)}, got {kind!r}")
    _reject_unknown(spec, fields[kind] | {"type", "name"}, f"obstacle {index}")
    name = f"obstacle:{spec.get('name', f'{kind}{index}')}"
    if kind == "sphere":
        radius = float(spec["radius"])
        if not radius > 0:
            raise ValueError(f"{name}: radius must be positive")
        return name, Sphere(_vec3(spec["center"]), radius)
    if kind == "box":
        low, high = _vec3(spec["low"]), _vec3(spec["high"])
        if not all(lo < hi for lo, hi in zip(low, high, strict=True)):
            raise ValueError(f"{name}: low must be below high")
        return name, Box(low, high)
    normal = _vec3(spec["normal"])
    if not np.linalg.norm(normal) > 0:
        raise ValueError(f"{name}: normal must be non-zero")
    return name, Plane(_vec3(spec["point"]), normal)
