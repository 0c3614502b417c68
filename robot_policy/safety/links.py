"""Whole-arm keep-out: spheres that cover each link's URDF collision geometry.

The barrier filter proves its steps for points (barrier.py). A link is a volume, so it is
covered by a few spheres, and "the link stays out of an obstacle" becomes "each sphere's
centre stays its radius plus a margin away": the end effector's point barrier, inflated. A
union of spheres that contains the link is conservative by construction and costs one
tracked point per sphere, all evaluated in one kinematics pass (robots/kinematics.py).

Covering is exact, not sampled. PyBullet collides a mesh as its convex hull, so the hull is
what is covered: it is cut into equal slabs along its longest principal axis, and each slab
gets the sphere around the slab's bounding-box centre through its farthest point. The farthest
point of a convex polytope is a vertex, and the vertices of hull ∩ slab are mesh vertices
inside the slab or points where a hull edge crosses a slab face; those crossings are among the
crossings of all vertex pairs, which all lie in hull ∩ slab, so the farthest of them is exact
and no hull needs computing.

The fingers slide on the hand, and the gripper is limited on its own, outside the barrier
stage, so nothing may assume where a finger will be during a stop: each finger sphere is
tracked at both ends of the stroke. Against a plane (the table) the two ends bound every
opening exactly, the distance being linear along the stroke; against a ball or box the sphere
is also inflated by half the stroke, as every opening is within that of an end.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pinocchio as pin

from robot_policy.robots.description import RobotDescription
from robot_policy.robots.kinematics import Point
from robot_policy.safety.workspace import TrackedSphere

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class LinkSphere:
    """One covering sphere: `center` (m) in the URDF frame of `link`, `radius` (m)."""

    link: str
    center: Vec3
    radius: float


@dataclass(frozen=True)
class _Link:
    vertices: np.ndarray  # the collision meshes' vertices in the link's frame, (k, 3)
    stroke: tuple[float, float] | None  # a finger's joint range (m); None for a rigid link


def collision_links(description: RobotDescription) -> tuple[str, ...]:
    """The links an arm joint moves that have collision geometry, from the base outward."""
    return tuple(_geometry(description))


@cache
def fit_spheres(
    description: RobotDescription, links: tuple[str, ...], count: int
) -> tuple[LinkSphere, ...]:
    """`count` spheres per link in `links` whose union contains the link's collision hull."""
    geometry = _geometry(description)
    unknown = [link for link in links if link not in geometry]
    if unknown:
        raise ValueError(f"no moving link with collision geometry {unknown}; known: {[*geometry]}")
    return tuple(
        LinkSphere(link, tuple(float(c) for c in center), radius)
        for link in links
        for center, radius in _cover(geometry[link].vertices, count)
    )


def tracked(
    description: RobotDescription, spheres: tuple[LinkSphere, ...]
) -> tuple[tuple[Point, ...], tuple[TrackedSphere, ...]]:
    """The points the kinematics tracks for `spheres`, and the keep-out sphere on each: one per
    sphere of a rigid link, one at each end of the stroke per finger sphere."""
    geometry = _geometry(description)
    points, bodies = [], []
    for sphere in spheres:
        stroke = geometry[sphere.link].stroke
        openings = (0.0,) if stroke is None else stroke
        sweep = 0.0 if stroke is None else (stroke[1] - stroke[0]) / 2
        for opening in openings:
            points.append(Point(sphere.link, sphere.center, opening))
            bodies.append(TrackedSphere(sphere.link, sphere.radius, sweep))
    return tuple(points), tuple(bodies)


@cache
def _geometry(description: RobotDescription) -> dict[str, _Link]:
    """Every moving link's collision vertices, read through Pinocchio's geometry model."""
    urdf = str(description.urdf_path)
    model = pin.buildModelFromUrdf(urdf)
    shapes = pin.buildGeomFromUrdf(
        model, urdf, pin.GeometryType.COLLISION, package_dirs=[str(description.urdf_path.parent)]
    )
    strokes = {f.name: (f.lower, f.upper) for f in description.fingers}
    parts: dict[str, list[np.ndarray]] = {}
    joints: dict[str, str] = {}
    for shape in shapes.geometryObjects:
        frame = model.frames[shape.parentFrame]
        if shape.parentJoint == 0:  # fixed to the base: nothing moves it
            continue
        if not hasattr(shape.geometry, "vertices"):
            raise ValueError(f"{frame.name}: only mesh collision geometry can be covered")
        to_link = frame.placement.inverse() * shape.placement
        vertices = np.asarray(shape.geometry.vertices(), dtype=float)
        parts.setdefault(frame.name, []).append(vertices @ to_link.rotation.T + to_link.translation)
        joints[frame.name] = model.names[shape.parentJoint]
    return {
        link: _Link(np.unique(np.concatenate(vertices), axis=0), strokes.get(joints[link]))
        for link, vertices in parts.items()
    }


def _cover(vertices: np.ndarray, count: int) -> list[tuple[np.ndarray, float]]:
    """(centre, radius) of `count` spheres covering the convex hull of `vertices` slab by slab
    (see the module docstring)."""
    axis = np.linalg.svd(vertices - vertices.mean(axis=0), full_matrices=False)[2][0]
    t = vertices @ axis
    cuts = np.linspace(t.min(), t.max(), count + 1)
    spheres = []
    for low, high in zip(cuts[:-1], cuts[1:], strict=True):
        inside = vertices[(t >= low) & (t <= high)]
        hull = np.concatenate([inside, _crossings(vertices, t, low), _crossings(vertices, t, high)])
        center = (hull.min(axis=0) + hull.max(axis=0)) / 2
        spheres.append((center, float(np.linalg.norm(hull - center, axis=1).max())))
    return spheres


def _crossings(vertices: np.ndarray, t: np.ndarray, level: float) -> np.ndarray:
    """Where the segment between every vertex below `level` and every one above crosses it."""
    below, above = t < level, t > level
    share = (level - t[below])[:, None] / (t[above][None, :] - t[below][:, None])
    start = vertices[below][:, None, :]
    return (start + share[..., None] * (vertices[above][None] - start)).reshape(-1, 3)
