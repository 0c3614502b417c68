"""The Jacobian must be the derivative of the FK it ships with, or the barrier filter mis-steers."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics

ROBOT = load_robot()


@pytest.fixture(scope="module")
def kinematics():
    return Kinematics(ROBOT)


def test_jacobian_matches_finite_differences(kinematics):
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(5):
        q = rng.uniform(ROBOT.arm_lower, ROBOT.arm_upper)
        steps = np.eye(7) * eps
        numeric = np.stack(
            [
                (kinematics.ee_position(q + d) - kinematics.ee_position(q - d)) / (2 * eps)
                for d in steps
            ],
            axis=1,
        )
        np.testing.assert_allclose(kinematics.jacobian(q), numeric, atol=1e-7)


def test_fk_is_the_simulators_link_frame(kinematics):
    q = np.array(ROBOT.home) + 0.1
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(ROBOT.urdf_path), useFixedBase=True, physicsClientId=client)
        for index, value in zip(ROBOT.arm_indices, q, strict=True):
            p.resetJointState(body, index, value, physicsClientId=client)
        frame = p.getLinkState(
            body, ROBOT.ee_link_index, computeForwardKinematics=True, physicsClientId=client
        )[4]
    finally:
        p.disconnect(client)
    np.testing.assert_allclose(kinematics.ee_position(q), frame, atol=1e-6)


def test_wrong_length_raises(kinematics):
    with pytest.raises(ValueError):
        kinematics.ee_position(np.zeros(6))
