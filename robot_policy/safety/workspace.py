"""Where the arm may be: a workspace box and obstacles, each as a barrier h(x) >= 0 on a point.

Every barrier is a signed distance (m) of a tracked point x from a convex shape, minus an
inflation, with a gradient of norm <= 1. Two facts the barrier filter's safety argument rests
on follow from that: h is convex in x, so h(x + d) >= h(x) + ∇h(x)·d for any step d, and h
changes no faster than x moves. The end effector (point 0) stays inside the workspace box and
a margin away from the obstacles; with the whole-arm keep-out (links.py) the centres of
spheres covering the links (points 1..) keep their radius plus a margin away from the
obstacles (not the box: links may leave the end effector's workspace).

The tracked points are evaluated together: the safety filter evaluates every barrier several
times per control tick on up to a few dozen points, so each kind of shape is one batch of
numpy arithmetic over all its rows, whatever the number of obstacles or points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# m below which a distance counts as zero: normalising a vector this short (its squares are
# subnormal) gives a "unit" gradient off by 1e-4; a picometre changes no decision here.
_TINY = 1e-12
# Outward normal of each box face, in the order of `_Boxes`' gaps: the low faces, the high.
_FACES = np.concatenate([-np.eye(3), np.eye(3)])


@dataclass(frozen=True)
class Sphere:
    """Solid ball kept out of."""

    center: tuple[float, float, float]
    radius: float


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box kept out of."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]


@dataclass(frozen=True)
class Plane:
    """Half-space boundary (e.g. a table top): points stay on the `normal` side."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]


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


@dataclass(frozen=True)
class TrackedSphere:
    """A sphere of the whole-arm keep-out, centred on a tracked point: `radius` (m) always, and
    `sweep` (m) more against shapes other than planes (see links.py: a finger's stroke)."""

    link: str
    radius: float
    sweep: float = 0.0


class BarrierSet:
    """All barriers of a scene: names, the tracked point of each (an index into the points
    `evaluate` is given), values h (m) and gradients.

    Point 0 is the end effector: the workspace box is the limit itself; obstacles are inflated
    by `margin` and reported as "obstacle:<name>". Points 1.. are `spheres` in order: each
    obstacle inflated by the sphere's radius + `sphere_margin`, reported as
    "link_obstacle:<link>:<name>". The end effector's barriers come first.
    """

    def __init__(
        self,
        workspace: WorkspaceBox | None,
        obstacles: Sequence[tuple[str, Obstacle]],
        margin: float,
        spheres: Sequence[TrackedSphere] = (),
        sphere_margin: float = 0.0,
    ) -> None:
        if not (margin >= 0 and sphere_margin >= 0):
            raise ValueError(f"margins must be >= 0, got {margin} and {sphere_margin}")
        rows: list[tuple[str, int, Obstacle, float]] = [
            (name, 0, plane, 0.0) for name, plane in (workspace.faces() if workspace else [])
        ]
        rows += [(f"obstacle:{name}", 0, shape, float(margin)) for name, shape in obstacles]
        names = [name for name, *_ in rows]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate barrier names in {names}")
        for point, sphere in enumerate(spheres, start=1):
            for name, shape in obstacles:
                inflation = sphere.radius + sphere_margin
                if not isinstance(shape, Plane):
                    inflation += sphere.sweep
                rows.append((f"link_obstacle:{sphere.link}:{name}", point, shape, inflation))
        self._arrange(rows)

    def end_effector(self) -> BarrierSet:
        """The barriers on point 0 alone, in the same order."""
        scene = BarrierSet.__new__(BarrierSet)
        scene._arrange([row for row in self._rows if row[1] == 0])
        return scene

    def _arrange(self, rows: list[tuple[str, int, Obstacle, float]]) -> None:
        # Each kind of shape is one batch (a ball is a box of no size, inflated by its
        # radius); the end effector's barriers come first, so that they are a slice.
        self._rows = rows
        ee_planes, ee_boxes, link_planes, link_boxes = [], [], [], []
        for row in rows:
            if isinstance(row[2], Plane):
                (ee_planes if row[1] == 0 else link_planes).append(row)
            else:
                (ee_boxes if row[1] == 0 else link_boxes).append(_as_box(row))
        self._cuts = len(ee_planes), len(ee_boxes)
        order = ee_planes + ee_boxes + link_planes + link_boxes
        self.names = tuple(name for name, *_ in order)
        self.points = np.array([point for _, point, *_ in order], dtype=int)
        self._planes = _Planes(ee_planes + link_planes)
        boxes = ee_boxes + link_boxes
        self._boxes = _Boxes(boxes) if boxes else None

    def __len__(self) -> int:
        return len(self.names)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values h (n,) and gradients dh/dx (n, 3) of every barrier at the tracked points
        `x` (points, 3)."""
        h, gradients = self._planes.evaluate(x)
        if self._boxes is None:
            return h, gradients
        box_h, box_gradients = self._boxes.evaluate(x)
        return self._merged(h, box_h), self._merged(gradients, box_gradients)

    def _merged(self, planes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Batch results back in barrier order: the end effector's planes and boxes, then the
        links'."""
        p, b = self._cuts
        return np.concatenate([planes[:p], boxes[:b], planes[p:], boxes[b:]])


def _as_box(row: tuple[str, int, Obstacle, float]) -> tuple[str, int, Obstacle, float]:
    name, point, shape, inflation = row
    if isinstance(shape, Sphere):
        return name, point, Box(shape.center, shape.center), inflation + shape.radius
    return row


class _Planes:
    """Signed distances to half-spaces, inflation subtracted."""

    def __init__(self, rows: list[tuple[str, int, Plane, float]]) -> None:
        self._points = np.array([point for _, point, _, _ in rows], dtype=int)
        self._single = not self._points.any()  # the end effector's: a matrix-vector product
        normals = np.array([plane.normal for _, _, plane, _ in rows], dtype=float).reshape(-1, 3)
        self._normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        anchors = np.array([plane.point for _, _, plane, _ in rows], dtype=float).reshape(-1, 3)
        inflation = [m for *_, m in rows]
        self._offsets = np.einsum("ij,ij->i", self._normals, anchors) + inflation

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._single:
            return self._normals @ x[0] - self._offsets, self._normals
        values = np.einsum("ij,ij->i", self._normals, x[self._points]) - self._offsets
        return values, self._normals


class _Boxes:
    """Signed distances from axis-aligned boxes, inflation subtracted."""

    def __init__(self, rows: list[tuple[str, int, Box, float]]) -> None:
        points = np.array([point for _, point, _, _ in rows], dtype=int)
        # The end effector's alone broadcast its one point instead of gathering it per row.
        self._points = points if points.any() else 0
        self._low = np.array([box.low for _, _, box, _ in rows], dtype=float)
        self._high = np.array([box.high for _, _, box, _ in rows], dtype=float)
        self._inflation = np.array([m for *_, m in rows], dtype=float)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = x[self._points]
        outside = x - np.minimum(np.maximum(x, self._low), self._high)
        distance = np.sqrt(np.einsum("ij,ij->i", outside, outside))
        out = distance >= _TINY
        if out.all():  # the usual case: every point outside every box
            return distance - self._inflation, outside / distance[:, None]
        # Inside: the way out is through the nearest face (for a ball's centre, any face).
        gaps = np.concatenate([x - self._low, self._high - x], axis=1)
        face = gaps.argmin(axis=1)
        values = np.where(out, distance, -gaps[np.arange(len(face)), face])
        gradients = np.where(
            out[:, None], outside / np.maximum(distance, _TINY)[:, None], _FACES[face]
        )
        return values - self._inflation, gradients
