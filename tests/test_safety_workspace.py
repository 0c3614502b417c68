"""The barrier stage's parts: shapes, the kinematic bounds its proof uses, faces, solver failure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety import GRIPPER, SafetyConfig
from robot_policy.safety.arm_model import lever_arms
from robot_policy.safety.workspace import BarrierSet, Box, Plane, Sphere

ROBOT = load_robot()
NAMES = (*ROBOT.arm_joint_names, GRIPPER)
HOME = np.array([*ROBOT.home, 0.04])
DT = 0.01


@pytest.fixture(scope="module")
def kinematics():
    return Kinematics(ROBOT)


points = st.lists(st.floats(-1, 1), min_size=3, max_size=3).map(np.array)


@given(x=points)
def test_barrier_gradients_are_derivatives(x):
    scene = BarrierSet(
        None,
        [
            ("ball", Sphere((0.1, 0.2, 0.3), 0.2)),
            ("box", Box((-0.2, -0.1, 0.0), (0.3, 0.4, 0.5))),
            ("slope", Plane((0, 0, 0.1), (1.0, 2.0, 2.0))),
        ],
        0.0,
    )
    eps = 1e-7
    h, gradients = scene.evaluate(x[None])
    assert np.all(np.linalg.norm(gradients, axis=1) <= 1 + 1e-12)
    for axis in range(3):
        step = np.eye(3)[axis] * eps
        ahead, behind = scene.evaluate((x + step)[None])[0], scene.evaluate((x - step)[None])[0]
        slope = (ahead - behind) / (2 * eps)
        # Kinks (box edges and its medial planes) make one-sided slopes differ; skip those.
        smooth = np.abs(slope - (ahead - h) / eps) < 1e-4
        np.testing.assert_allclose(slope[smooth], gradients[smooth, axis], atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(
    fractions=st.lists(st.floats(0, 1), min_size=7, max_size=7).map(np.array),
    i=st.integers(0, 6),
    j=st.integers(0, 6),
)
def test_lever_arms_bound_first_and_second_derivatives(kinematics, fractions, i, j):
    """The barrier proof's curvature term rests on |∂²x/∂q_i∂q_j| <= |J[:, m]| <= R_m, with m
    = max(i, j) the joint nearer the hand."""
    q = ROBOT.arm_lower + fractions * (ROBOT.arm_upper - ROBOT.arm_lower)
    arms = lever_arms(ROBOT)[0]
    columns = np.linalg.norm(kinematics.jacobian(q), axis=0)
    assert np.all(columns <= arms)
    eps = 1e-4
    step = np.eye(7)[i] * eps
    second = (kinematics.jacobian(q + step)[:, j] - kinematics.jacobian(q - step)[:, j]) / (2 * eps)
    assert np.linalg.norm(second) <= columns[max(i, j)] + 1e-5


def push(kinematics, config: dict, direction: np.ndarray, ticks: int = 60):
    """Command the hand along `direction` (m per tick); the hand positions and reasons seen."""
    safety = SafetyConfig.from_dict(config).build_filter(NAMES, DT)
    q, path, reasons = HOME.copy(), [], set()
    for k in range(ticks):
        step = np.linalg.pinv(kinematics.jacobian(q[:7])) @ direction
        safety.feed(k * DT)
        result = safety.step(q + np.append(step, 0.0), HOME, k * DT)
        q = result.command
        path.append(kinematics.ee_position(q[:7]))
        reasons.update(result.reasons)
    return np.array(path), reasons


def test_a_push_through_a_face_is_stopped_and_named(kinematics):
    top = kinematics.ee_position(HOME[:7])[2] + 0.05
    config = {"workspace": {"low": [-1, -1, 0], "high": [1, 1, top]}, "obstacles": []}
    path, reasons = push(kinematics, config, np.array([0.0, 0.0, 0.003]))
    assert "workspace:z_max" in reasons
    assert top - 0.01 < path[-1][2] and path[:, 2].max() <= top + 1e-9


def test_a_start_inside_an_obstacle_may_leave_it_but_not_go_deeper(kinematics):
    z = kinematics.ee_position(HOME[:7])[2]
    config = {
        "workspace": None,
        "obstacles": [
            {"type": "plane", "name": "shelf", "point": [0, 0, z + 0.1], "normal": [0, 0, 1]}
        ],
    }
    down, reasons = push(kinematics, config, np.array([0.0, 0.0, -0.003]), ticks=30)
    assert "obstacle:shelf" in reasons and down[:, 2].min() >= z - 1e-9
    up, _ = push(kinematics, config, np.array([0.0, 0.0, 0.003]), ticks=30)
    assert up[-1][2] > z + 0.01


def test_a_failing_solver_still_stops_the_arm_in_time(kinematics, monkeypatch):
    import quadprog

    def fail(*args):
        raise ValueError("constraints are inconsistent, no solution")

    monkeypatch.setattr(quadprog, "solve_qp", fail)
    floor = kinematics.ee_position(HOME[:7])[2] - 0.05
    config = {"workspace": {"low": [-1, -1, floor], "high": [1, 1, 1]}, "obstacles": []}
    path, reasons = push(kinematics, config, np.array([0.0, 0.0, -0.003]))
    assert {"barrier_qp_failed", "barrier_brake"} <= reasons
    assert path[:, 2].min() >= floor - 1e-9
