"""The two numbers per joint the Cartesian safety stage needs beyond the limits, from the URDF.

Lever arms bound how far the end effector can move per radian of each joint, in any
configuration; the inertia proxy weights joint speeds into a kinetic energy for the energy
tank. Both are read once per process, on a private PyBullet client, and returned read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import pybullet as p

from robot_policy.robots.description import RobotDescription

# PyBullet reports link frame origins in single precision; pad the lever arms by far more than
# that rounding so they stay upper bounds.
_ROUNDING = 1e-6  # m


@contextmanager
def _loaded(description: RobotDescription, q: np.ndarray) -> Iterator[tuple[int, int]]:
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
        yield client, body
    finally:
        p.disconnect(client)


@cache
def lever_arms(description: RobotDescription) -> np.ndarray:
    """Per arm joint, an upper bound (m) on the end effector's distance from that joint's axis.

    The distance between consecutive joint origins (and from the last one to the end-effector
    point) is fixed by the links, so their sum from joint i onward bounds |x − o_i| in every
    configuration; |∂x/∂q_i| and the second derivatives ∂²x/∂q_i∂q_j (j >= i) are bounded by it.
    """
    with _loaded(description, np.array(description.home)) as (client, body):
        links = [*description.arm_indices, description.ee_link_index]
        origins = np.array(
            [
                p.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=client)[4]
                for i in links
            ]
        )
    segments = np.linalg.norm(np.diff(origins, axis=0), axis=1)
    return _read_only(np.cumsum(segments[::-1])[::-1] + _ROUNDING)


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
