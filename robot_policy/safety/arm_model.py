"""The two numbers per joint the Cartesian safety stage needs beyond the limits, from the URDF.

Lever arms bound how far a tracked point (the end effector, a link sphere's centre) can move
per radian of each joint, in any configuration; the inertia proxy weights joint speeds into a
kinetic energy for the energy tank. Both are read once per process, on a private PyBullet
client (so they also cross-check Pinocchio's kinematics), and returned read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import pybullet as p

from robot_policy.robots.description import RobotDescription
from robot_policy.robots.kinematics import Point

# PyBullet reports link frame origins in single precision; pad the lever arms by far more than
# that rounding so they stay upper bounds.
_ROUNDING = 1e-6  # m


@contextmanager
def _loaded(
    description: RobotDescription, q: np.ndarray, opening: float = 0.0
) -> Iterator[tuple[int, int]]:
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(
            str(description.urdf_path),
            useFixedBase=True,
            flags=p.URDF_IGNORE_VISUAL_SHAPES,
            physicsClientId=client,
        )
        for index, value in zip(description.arm_indices, q, strict=True):
            p.resetJointState(body, index, float(value), physicsClientId=client)
        for index in description.finger_indices:
            p.resetJointState(body, index, opening, physicsClientId=client)
        yield client, body
    finally:
        p.disconnect(client)


@cache
def lever_arms(description: RobotDescription, points: tuple[Point, ...] = ()) -> np.ndarray:
    """Per point (the end effector, then `points`) and arm joint, an upper bound (m) on the
    point's distance from that joint's axis, shape (1 + len(points), arm joints).

    The distance between consecutive joint origins (and from the last joint that carries the
    point to the point) is fixed by the links, so their sum from joint i onward bounds
    |x − o_i| in every configuration; |∂x/∂q_i| and the second derivatives ∂²x/∂q_i∂q_j
    (j >= i) are bounded by it. Joints that do not carry the point get 0.
    """
    points = (Point(description.ee_link_name), *points)
    bounds = np.zeros((len(points), len(description.arm)))
    for opening in {point.opening for point in points}:
        with _loaded(description, np.array(description.home), opening) as (client, body):
            infos = [
                p.getJointInfo(body, i, physicsClientId=client)
                for i in range(p.getNumJoints(body, physicsClientId=client))
            ]
            frames = [
                p.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=client)[4:6]
                for i in range(len(infos))
            ]
        links = {info[12].decode(): info[0] for info in infos}
        origins = np.array([frames[i][0] for i in description.arm_indices])
        for row, point in enumerate(points):
            if point.opening != opening:
                continue
            carrier = links[point.link]  # the nearest arm joint at or above the point's link
            while carrier not in description.arm_indices:
                carrier = infos[carrier][16]
            last = description.arm_indices.index(carrier)
            position, orientation = frames[links[point.link]]
            rotation = np.array(p.getMatrixFromQuaternion(orientation)).reshape(3, 3)
            chain = [*origins[: last + 1], np.array(position) + rotation @ point.offset]
            segments = np.linalg.norm(np.diff(chain, axis=0), axis=1)
            bounds[row, : last + 1] = np.cumsum(segments[::-1])[::-1] + _ROUNDING
    return _read_only(bounds)


@cache
def inertia_proxy(description: RobotDescription) -> np.ndarray:
    """Diagonal of the arm's joint-space mass matrix (kg·m²) in the home pose.

    A configuration-independent stand-in for the real, pose-dependent inertia: enough to weight
    a big shoulder joint above a light wrist joint when budgeting kinetic energy.
    """
    home = np.array(description.home)
    with _loaded(description, home) as (client, body):
        n_fingers = len(description.fingers)
        matrix = p.calculateMassMatrix(body, [*home, *[0.0] * n_fingers], physicsClientId=client)
    return _read_only(np.diag(np.asarray(matrix))[: len(description.arm)].copy())


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
