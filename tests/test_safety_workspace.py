"""Property tests: whatever is commanded, the end effector stays in its box and out of obstacles.

"Stays" is judged on the same FK the filter uses; the filter checks its own step on that FK, so
the bound is exact up to round-off rather than a discretisation tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from robot_policy.robots import panda
from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety import benchmark_cbf
from robot_policy.safety.energy import EnergyTank
from robot_policy.safety.workspace import Box, CartesianBarrierFilter, Plane, Sphere

ROBOT = panda()
LOWER, UPPER = ROBOT.arm_lower, ROBOT.arm_upper
HOME = np.array(ROBOT.home)  # end effector at about (0.31, 0, 0.49)
SCENE = {
    "workspace": {"low": [0.0, -0.5, 0.0], "high": [0.75, 0.5, 0.8]},
    "obstacles": [
        {"type": "sphere", "name": "ball", "center": [0.45, 0.2, 0.35], "radius": 0.08},
        {"type": "box", "name": "bin", "low": [0.4, -0.35, 0.0], "high": [0.6, -0.15, 0.25]},
        {"type": "plane", "name": "table", "point": [0.0, 0.0, 0.1], "normal": [0.0, 0.0, 1.0]},
    ],
}


@pytest.fixture(scope="module")
def kinematics():
    with Kinematics(ROBOT) as k:
        yield k


@pytest.fixture(scope="module")
def safety(kinematics):
    return CartesianBarrierFilter.from_config(SCENE, ROBOT, kinematics)


def barrier_values(safety, q):
    return safety.barriers(safety.kinematics.ee_position(q))[1]


fractions = st.lists(st.floats(0, 1), min_size=7, max_size=7).map(np.array)
near_home = st.lists(st.floats(-0.8, 0.8), min_size=7, max_size=7).map(
    lambda d: np.clip(HOME + np.array(d), LOWER, UPPER)
)
targets = fractions.map(lambda f: LOWER - 0.5 + f * (UPPER - LOWER + 1.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    start=near_home,
    # A held target drives the arm into the barriers; a jumping one probes the corners.
    commands=st.one_of(
        targets.map(lambda t: [t] * 20), st.lists(targets, min_size=20, max_size=20)
    ),
    dt=st.sampled_from([0.002, 0.01, 0.05]),
)
def test_rollouts_never_leave_the_safe_set(safety, start, commands, dt):
    assume(np.all(barrier_values(safety, start) >= 0))
    q = start
    for command in commands:
        result = safety.correct(q, command, dt)
        assert not result.held and result.command is not None
        assert np.all(np.abs(result.velocity) <= safety.max_velocity + 1e-9)
        q = result.command
        assert np.all(barrier_values(safety, q) >= -1e-9), result.reasons


def test_a_command_far_from_constraints_passes_unchanged(safety):
    desired = HOME + 0.001
    result = safety.correct(HOME, desired, 0.01)
    assert result.reasons == () and not result.held
    np.testing.assert_allclose(result.command, desired, rtol=0, atol=1e-9)


def test_a_push_through_a_face_is_stopped_and_named(kinematics):
    x = kinematics.ee_position(HOME)
    config = {"workspace": {"low": [-1, -1, 0], "high": [1, 1, x[2] + 0.01]}}
    safety = CartesianBarrierFilter.from_config(config, ROBOT, kinematics)
    up = np.linalg.pinv(kinematics.jacobian(HOME)) @ np.array([0.0, 0.0, 0.005])
    q = HOME
    for _ in range(30):
        result = safety.correct(q, q + up, 0.01)
        q = result.command
    assert "workspace:z_max" in result.reasons
    assert x[2] + 0.005 < kinematics.ee_position(q)[2] <= x[2] + 0.01


def test_conflicting_barriers_use_slack_instead_of_failing(kinematics):
    x = kinematics.ee_position(HOME)
    config = {
        "workspace": {"low": [-1, -1, 0], "high": [1, 1, x[2] + 0.01]},
        "obstacles": [{"type": "plane", "point": [0, 0, x[2] + 0.2], "normal": [0, 0, 1]}],
    }
    safety = CartesianBarrierFilter.from_config(config, ROBOT, kinematics)
    result = safety.correct(HOME, HOME, 0.01)
    assert "cartesian:slack_used" in result.reasons and not result.held
    assert kinematics.ee_position(result.command)[2] <= x[2] + 0.01


@pytest.mark.parametrize(
    ("q", "q_des", "dt", "reason"),
    [
        (HOME, np.full(7, np.nan), 0.01, "cartesian:bad_command"),
        (HOME, np.r_[HOME[:6], np.inf], 0.01, "cartesian:bad_command"),
        (HOME, HOME[:6], 0.01, "cartesian:bad_command"),
        (HOME, "up", 0.01, "cartesian:bad_command"),
        (HOME, HOME, 0.0, "cartesian:bad_dt"),
        (HOME, HOME, float("nan"), "cartesian:bad_dt"),
        (HOME, HOME, "fast", "cartesian:bad_dt"),
        (np.full(7, np.nan), HOME, 0.01, "cartesian:bad_state"),
        (None, HOME, 0.01, "cartesian:bad_state"),
    ],
)
def test_bad_input_holds_with_a_reason(safety, q, q_des, dt, reason):
    result = safety.correct(q, q_des, dt)
    assert result.held and result.reasons == (reason,)
    if reason == "cartesian:bad_state":
        assert result.command is None
    else:
        np.testing.assert_array_equal(result.command, HOME)


def test_solver_failure_holds(kinematics, monkeypatch):
    import quadprog

    def fail(*args):
        raise ValueError("constraints are inconsistent, no solution")

    monkeypatch.setattr(quadprog, "solve_qp", fail)
    floor = kinematics.ee_position(HOME)[2] - 0.005
    config = {"workspace": {"low": [-1, -1, floor], "high": [1, 1, 1]}}
    safety = CartesianBarrierFilter.from_config(config, ROBOT, kinematics)
    down = np.linalg.pinv(kinematics.jacobian(HOME)) @ np.array([0.0, 0.0, -0.05])
    result = safety.correct(HOME, HOME + down, 0.01)
    assert result.held and result.reasons == ("cartesian:qp_failed",)
    np.testing.assert_array_equal(result.command, HOME)


points = st.lists(st.floats(-1, 1), min_size=3, max_size=3).map(np.array)


@given(x=points)
def test_barrier_gradients_are_derivatives(x):
    shapes = [
        Sphere((0.1, 0.2, 0.3), 0.2),
        Box((-0.2, -0.1, 0.0), (0.3, 0.4, 0.5)),
        Plane((0, 0, 0.1), (1.0, 2.0, 2.0)),
    ]
    eps = 1e-7
    for shape in shapes:
        h, gradient = shape.barrier(x)
        for axis in range(3):
            step = np.eye(3)[axis] * eps
            slope = (shape.barrier(x + step)[0] - shape.barrier(x - step)[0]) / (2 * eps)
            # Kinks (box edges and its medial planes) make one-sided slopes differ; skip those.
            if abs(slope - (shape.barrier(x + step)[0] - h) / eps) < 1e-4:
                assert slope == pytest.approx(gradient[axis], abs=1e-4)


@pytest.mark.parametrize(
    "config",
    [
        {"workspace": {"low": [0, 0, 0], "high": [1, 1, 1]}, "alpha": 10, "marginn": 0.1},
        {"workspace": {"low": [0, 0, 0], "high": [1, 1, 1], "z_max": 2}},
        {"workspace": {"low": [0, 0, 0], "high": [1, -1, 1]}},
        {"obstacles": [{"type": "cylinder", "center": [0, 0, 0], "radius": 1}]},
        {"obstacles": [{"type": "sphere", "center": [0, 0, 0], "radius": 1, "colour": "red"}]},
        {"obstacles": [{"type": "sphere", "center": [0, 0], "radius": 1}]},
        {"obstacles": [{"type": "plane", "point": [0, 0, 0], "normal": [0, 0, 0]}]},
        {"max_velocity": [1.0] * 6},
    ],
)
def test_bad_config_is_rejected(kinematics, config):
    with pytest.raises(ValueError):
        CartesianBarrierFilter.from_config(config, ROBOT, kinematics)


def test_benchmark_reports_percentiles():
    stats = benchmark_cbf.run(iterations=50)
    assert 0 < stats["filter_cbf_us_p50"] <= stats["filter_cbf_us_p99"]


@given(
    velocities=st.lists(
        st.lists(st.floats(-3, 3), min_size=7, max_size=7).map(np.array), min_size=1, max_size=30
    )
)
def test_energy_tank_bounds_kinetic_energy(velocities):
    inertia = np.full(7, 0.5)
    tank = EnergyTank(inertia, capacity=1.0, refill_rate=0.5)
    dt = 0.01
    for i, wanted in enumerate(velocities):
        v, scale, reasons = tank.step(wanted, dt)
        assert 0.0 <= scale <= 1.0 and (scale == 1.0) == (reasons == ())
        kinetic = 0.5 * v @ (inertia * v)
        # Never more than the full tank plus what the refill could add since the start.
        assert kinetic <= 1.0 + 0.5 * dt * (i + 1) + 1e-9
        assert 0.0 <= tank.energy <= 1.0


def test_energy_tank_refills_when_braking_and_stops_on_bad_input():
    tank = EnergyTank(np.ones(7), capacity=1.0)
    fast = np.full(7, 1.0)  # K = 3.5 J > capacity
    v, scale, reasons = tank.step(fast, 0.01)
    assert reasons == ("energy:tank_empty",) and tank.energy == 0.0
    assert 0.5 * v @ v == pytest.approx(1.0)
    tank.step(np.zeros(7), 0.01)
    assert tank.energy == pytest.approx(1.0)
    v, scale, reasons = tank.step(np.full(7, np.nan), 0.01)
    assert reasons == ("energy:bad_input",) and scale == 0.0 and not v.any()
    assert tank.step("fast", 0.01)[2] == ("energy:bad_input",)
