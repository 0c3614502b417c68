"""Property tests for the composed filter: joint limits, barriers and energy tank together.

"Inside" is judged on the same forward kinematics the filter uses; the filter proves each step
and the stop after it on that model, so the bound is exact up to round-off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import hypothesis
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety import GRIPPER, SafetyConfig, SafetyFilter
from robot_policy.safety.arm_model import inertia_proxy

ROBOT = load_robot()
NAMES = (*ROBOT.arm_joint_names, GRIPPER)
N = len(NAMES)
HOME = np.array([*ROBOT.home, 0.04])
SCENE = {
    "workspace": {"low": [0.0, -0.5, 0.0], "high": [0.75, 0.5, 0.8]},
    "obstacles": [
        {"type": "sphere", "name": "ball", "center": [0.45, 0.2, 0.35], "radius": 0.08},
        {"type": "box", "name": "bin", "low": [0.4, -0.35, 0.0], "high": [0.6, -0.15, 0.25]},
        {"type": "plane", "name": "table", "point": [0.0, 0.0, 0.1], "normal": [0.0, 0.0, 1.0]},
    ],
    "energy": {"capacity": 1.5, "refill_rate": 1.0},
}
CONFIG = SafetyConfig.from_dict(SCENE)
LIMITS = CONFIG.joint_limits()
LOWER, UPPER = np.array(LIMITS.lower), np.array(LIMITS.upper)
VMAX, AMAX, JMAX = (np.array(x) for x in (LIMITS.velocity, LIMITS.acceleration, LIMITS.jerk))
INERTIA = inertia_proxy(ROBOT)
TOL = 1e-6
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kinematics():
    return Kinematics(ROBOT)


def barrier_values(safety: SafetyFilter, q: np.ndarray) -> np.ndarray:
    points = safety.barriers.kinematics.points_and_jacobians(q[:7])[0]
    return safety.barriers.scene.evaluate(points)[0]


def test_for_robot_loads_the_shipped_yaml():
    shipped = SafetyConfig.from_yaml(REPO / "config" / "safety" / "panda.yaml")
    assert SafetyConfig.for_robot("panda") == shipped == SafetyConfig.for_robot()
    assert shipped.workspace is not None and [n for n, _ in shipped.obstacles] == ["table"]
    # The code defaults are joint limits only: the robot's cell lives in its YAML alone.
    assert SafetyConfig().workspace is None and SafetyConfig().obstacles == ()
    # ... and its margin below the hardware's speed: the code default has none.
    assert {**SafetyConfig().limits, "velocity_scale": 0.85} == dict(shipped.limits)


near_home = st.lists(st.floats(-0.8, 0.8), min_size=7, max_size=7).map(
    lambda d: np.clip(HOME + np.array([*d, 0.0]), LOWER, UPPER)
)
anywhere = st.lists(st.floats(0, 1), min_size=N, max_size=N).map(
    lambda f: LOWER + np.array(f) * (UPPER - LOWER)
)
targets = st.lists(st.floats(0, 1), min_size=N, max_size=N).map(
    lambda f: LOWER - 0.5 + np.array(f) * (UPPER - LOWER + 1.0)
)
wild = st.one_of(
    st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 1e9, 0.0]), min_size=N, max_size=N),
    st.lists(st.floats(-4, 4), min_size=0, max_size=N + 2),
    st.sampled_from([None, "panda", {"foo": 1.0}]),
)


@dataclass(frozen=True)
class Push:
    """Command: move the hand along `direction` (m per tick) from wherever it is commanded."""

    direction: tuple[float, float, float]

    def command(self, kinematics: Kinematics, q: np.ndarray) -> np.ndarray:
        step = np.linalg.pinv(kinematics.jacobian(q[:7])) @ np.array(self.direction)
        return q + np.append(step, 0.0)


# Straight-line pushes and held targets drive the hand into the barriers; jumps, garbage,
# e-stops and lapses of the watchdog probe everything else.
pushes = st.builds(
    lambda d, speed: Push(tuple(speed * np.array(d) / np.linalg.norm(d))),
    st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda d: np.linalg.norm(d) > 0.1),
    st.floats(0.005, 0.02),
)
events = st.sampled_from(["", "", "", "", "stop", "reset", "starve"])
held = st.tuples(st.one_of(targets, pushes), st.integers(20, 120)).map(
    lambda t: [(t[0], "")] * t[1]
)
sequences = st.one_of(
    held, held, st.lists(st.tuples(st.one_of(targets, pushes, wild), events), max_size=60)
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(
    start=st.one_of(near_home, anywhere),
    sequence=sequences,
    dt=st.sampled_from([0.01, 0.05, 0.002]),
)
def test_rollouts_respect_every_limit_barrier_and_the_energy_budget(
    kinematics, start, sequence, dt
):
    safety = CONFIG.build_filter(NAMES, dt)
    assume(np.all(barrier_values(safety, start) >= 0))
    outputs, engaged = [start], 0
    for k, (command, event) in enumerate(sequence):
        now = k * dt
        if event != "starve":
            safety.feed(now)
        if event == "stop":
            safety.engage_e_stop("test")
        elif event == "reset":
            safety.reset()
        if isinstance(command, Push):
            command = command.command(kinematics, outputs[-1])
        result = safety.step(command, start, now)
        assert result.command.shape == (N,) and np.isfinite(result.command).all()
        assert np.all(barrier_values(safety, result.command) >= -1e-9), result.reasons
        outputs.append(result.command)
        engaged += any(r.startswith(("workspace:", "obstacle:")) for r in result.reasons)
    # Steer the search toward runs that keep the barriers busy: those are the ones that test them.
    hypothesis.target(float(engaged), label="ticks a barrier changed")
    hypothesis.event(f"barriers engaged: {engaged > 0}")
    q = np.array(outputs)
    assert (q >= LOWER - TOL).all() and (q <= UPPER + TOL).all()
    v = np.diff(q, axis=0, prepend=q[:1]) / dt
    a = np.diff(v, axis=0, prepend=np.zeros((1, N))) / dt
    j = np.diff(a, axis=0, prepend=np.zeros((1, N))) / dt
    assert (np.abs(v) <= VMAX * (1 + TOL)).all()
    assert (np.abs(a) <= AMAX * (1 + TOL) + TOL).all()
    if dt >= 0.01:  # jerk is guaranteed only where jerk*dt >= 2*acceleration (see filter.py)
        assert (np.abs(j) <= JMAX * (1 + TOL) + TOL).all()
    kinetic = 0.5 * np.sum(INERTIA * v[:, :7] ** 2, axis=1)
    budget = SCENE["energy"]["capacity"] + SCENE["energy"]["refill_rate"] * dt * np.arange(len(q))
    assert (kinetic <= budget + 1e-9).all()


@settings(max_examples=50, deadline=None)
@given(
    offset=st.lists(st.floats(-0.3, 0.3), min_size=7, max_size=7),
    direction=st.lists(st.floats(-1, 1), min_size=N, max_size=N).map(np.array),
    size=st.floats(0, 0.5),
)
def test_a_command_that_is_already_safe_passes_unchanged(kinematics, offset, direction, size):
    dt = 0.01
    start = HOME + np.array([*offset, 0.0])
    safety = CONFIG.build_filter(NAMES, dt)
    assume(np.all(barrier_values(safety, start) >= 0.05))
    step = size * direction * np.minimum(AMAX, JMAX * dt) * dt * dt
    result = safety.step(start + step, start, 0.0)
    assert result.reasons == () and not result.held and result.scale == 1.0
    np.testing.assert_allclose(result.command, start + step, rtol=0, atol=1e-12)


def push_down(safety: SafetyFilter, kinematics: Kinematics, ticks: int) -> tuple[float, set]:
    """Command the hand down at 0.5 m/s for `ticks`; lowest height reached and reasons seen."""
    q, lowest, reasons = HOME.copy(), np.inf, set()
    for k in range(ticks):
        down = np.linalg.pinv(kinematics.jacobian(q[:7])) @ np.array([0.0, 0.0, -0.005])
        safety.feed(k * 0.01)
        result = safety.step(q + np.append(down, 0.0), HOME, k * 0.01)
        q = result.command
        lowest = min(lowest, kinematics.ee_position(q[:7])[2])
        reasons.update(result.reasons)
    return lowest, reasons


def test_the_table_stops_a_hand_driven_into_it(kinematics):
    # The shipped end-effector barrier alone (table top at z = 0, 2 cm margin): the links'
    # keep-out, which stops a tilting hand higher, is tests/test_safety_links.py's.
    config = replace(SafetyConfig.for_robot(), links=None)
    joint_only = SafetyFilter(config.joint_limits(), NAMES, 0.01)
    assert push_down(joint_only, kinematics, 200)[0] < 0.0  # the test drives through the table
    safety = config.build_filter(NAMES, 0.01)
    lowest, reasons = push_down(safety, kinematics, 200)
    assert "obstacle:table" in reasons
    assert 0.02 - 1e-9 <= lowest < 0.03  # stops at the margin, not far above it


def test_build_filter_rejects_an_arm_order_the_kinematics_cannot_read():
    with pytest.raises(ValueError, match="URDF order"):
        SafetyConfig.for_robot().build_filter((*reversed(ROBOT.arm_joint_names), GRIPPER), 0.01)
    SafetyConfig(workspace=None, obstacles=()).build_filter(  # joint limits only: any order
        (*reversed(ROBOT.arm_joint_names), GRIPPER), 0.01
    )


@pytest.mark.parametrize(
    "config",
    [
        {"limits": {"marginn": 0.1}},
        {"limits": {"margin": 3.0}},
        {"robot": "ur5"},
        {"barrier": {"alpha": -1.0}},
        {"barrier": {"aplha": 10.0}},
        {"workspace": {"low": [0, 0, 0], "high": [1, 1, 1], "z_max": 2}},
        {"workspace": {"low": [0, 0, 0], "high": [1, -1, 1]}},
        {"obstacles": [{"type": "cylinder", "center": [0, 0, 0], "radius": 1}]},
        {"obstacles": [{"type": "sphere", "center": [0, 0, 0], "radius": 1, "colour": "red"}]},
        {"obstacles": [{"type": "sphere", "center": [0, 0], "radius": 1}]},
        {"obstacles": [{"type": "plane", "point": [0, 0, 0], "normal": [0, 0, 0]}]},
        {
            "obstacles": [{"type": "plane", "name": "a", "point": [0, 0, 0], "normal": [0, 0, 1]}]
            * 2
        },
        {"energy": {"capacity": 0.0, "refill_rate": 1.0}},
        {"energy": {"capacity": 1.0, "refill_rate": 1.0, "inertia": [1.0] * 6}},
        {"energy": {"capacity": 1.0}},
        {"watchdog": {"hold_timeout": 0.1}},
    ],
)
def test_bad_config_is_rejected_with_a_clear_error(config, tmp_path):
    with pytest.raises(ValueError):
        SafetyConfig.from_dict(config)
    path = tmp_path / "safety.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=str(path)):
        SafetyConfig.from_yaml(path)
