"""Where the end effector may be: a workspace box and obstacles, each as a barrier h(x) >= 0.

Every barrier is a signed distance (m) of the end-effector point x from a convex shape, minus a
margin, with a gradient of norm <= 1. Two facts the barrier filter's safety argument rests on
follow from that: h is convex in x, so h(x + d) >= h(x) + ∇h(x)·d for any step d, and h
changes no faster than x moves. Only the end-effector point is checked, not the links.

Shapes work on Python floats: a point is three numbers, and the safety filter evaluates every
barrier several times per control tick, where numpy's per-call cost would dominate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# m below which a distance counts as zero: normalising a vector this short (its squares are
# subnormal) gives a "unit" gradient off by 1e-4; a picometre changes no decision here.
_TINY = 1e-12


Gradient = tuple[float, float, float]


@dataclass(frozen=True)
class Sphere:
    """Solid ball the end effector keeps out of."""

    center: tuple[float, float, float]
    radius: float

    def barrier(self, x: Sequence[float]) -> tuple[float, Gradient]:
        dx, dy, dz = (a - c for a, c in zip(x, self.center, strict=True))
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        if distance < _TINY:  # at the centre every direction leads out equally; pick up
            return -self.radius, (0.0, 0.0, 1.0)
        return distance - self.radius, (dx / distance, dy / distance, dz / distance)


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box the end effector keeps out of."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def barrier(self, x: Sequence[float]) -> tuple[float, Gradient]:
        dx, dy, dz = (
            a - lo if a < lo else a - hi if a > hi else 0.0
            for a, lo, hi in zip(x, self.low, self.high, strict=True)
        )
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        if distance >= _TINY:
            return distance, (dx / distance, dy / distance, dz / distance)
        # Inside: the way out is through the nearest face.
        gaps = [a - lo for a, lo in zip(x, self.low, strict=True)]
        gaps += [hi - a for a, hi in zip(x, self.high, strict=True)]
        face = gaps.index(min(gaps))
        gradient = [0.0, 0.0, 0.0]
        gradient[face % 3] = -1.0 if face < 3 else 1.0
        return -gaps[face], (gradient[0], gradient[1], gradient[2])


@dataclass(frozen=True)
class Plane:
    """Half-space boundary (e.g. a table top): the end effector stays on the `normal` side."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def barrier(self, x: Sequence[float]) -> tuple[float, Gradient]:
        length = math.hypot(*self.normal)
        nx, ny, nz = (n / length for n in self.normal)
        px, py, pz = self.point
        return nx * (x[0] - px) + ny * (x[1] - py) + nz * (x[2] - pz), (nx, ny, nz)


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


class BarrierSet:
    """All barriers of a scene, evaluated together: names, values h (m) and gradients.

    The workspace box is the limit itself; obstacles are inflated by `margin` and reported as
    "obstacle:<name>". Planes (the box faces, a table) are evaluated as one matrix product, the
    other shapes one by one.
    """

    def __init__(
        self,
        workspace: WorkspaceBox | None,
        obstacles: Sequence[tuple[str, Obstacle]],
        margin: float,
    ) -> None:
        if not margin >= 0:
            raise ValueError(f"obstacle margin must be >= 0, got {margin}")
        named: list[tuple[str, Obstacle, float]] = [
            (name, plane, 0.0) for name, plane in (workspace.faces() if workspace else [])
        ] + [(f"obstacle:{name}", shape, float(margin)) for name, shape in obstacles]
        names = [n for n, _, _ in named]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate barrier names in {names}")
        planes = [(n, o, m) for n, o, m in named if isinstance(o, Plane)]
        self._shapes = [(n, o, m) for n, o, m in named if not isinstance(o, Plane)]
        self.names = tuple(n for n, _, _ in planes) + tuple(n for n, _, _ in self._shapes)
        normals = np.array([o.normal for _, o, _ in planes], dtype=float).reshape(-1, 3)
        self._normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        points = np.array([o.point for _, o, _ in planes], dtype=float).reshape(-1, 3)
        self._offsets = np.einsum("ij,ij->i", self._normals, points) + [m for _, _, m in planes]

    def __len__(self) -> int:
        return len(self.names)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values h (n,) and gradients dh/dx (n, 3) of every barrier at the point `x`."""
        if not self._shapes:
            return self._normals @ x - self._offsets, self._normals
        point = x.tolist()
        values = (self._normals @ x - self._offsets).tolist()
        gradients = self._normals.tolist()
        for _, shape, margin in self._shapes:
            h, gradient = shape.barrier(point)
            values.append(h - margin)
            gradients.append(gradient)
        return np.array(values), np.array(gradients)
