"""Each thing the filter changes is reported, so a log explains every hold and slow-down."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy.robots import load_robot
from robot_policy.safety import GRIPPER, SafetyFilter, SafetyLimits

ROBOT = load_robot()
NAMES = (*ROBOT.arm_joint_names, GRIPPER)
LIMITS = SafetyLimits.from_robot(ROBOT)
HOME = np.array([*ROBOT.home, 0.04])
DT = 0.01


def started() -> SafetyFilter:
    safety = SafetyFilter(LIMITS, NAMES, dt=DT)
    safety.step(HOME, HOME, 0.0)
    return safety


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ([np.nan] * 8, "non_finite"),
        ([np.inf] + [0.0] * 7, "non_finite"),
        ([0.0] * 7, "wrong_length"),
        (np.zeros((2, 8)), "wrong_length"),
        ("forward", "malformed"),
        (None, "wrong_length"),
        ({**dict(zip(NAMES, HOME, strict=True)), "foo": 0.0}, "unknown_joint:foo"),
        (dict(zip(NAMES[1:], HOME[1:], strict=True)), "missing_joint:panda_joint1"),
        ({**dict(zip(NAMES, HOME, strict=True)), GRIPPER: "wide"}, "malformed"),
    ],
)
def test_bad_commands_hold_with_their_reason(command, reason):
    result = started().step(command, HOME, DT)
    assert result.held and reason in result.reasons
    np.testing.assert_array_equal(result.command, HOME)


def test_first_tick_hold_uses_the_measured_state():
    result = SafetyFilter(LIMITS, NAMES, dt=DT).step([np.nan] * 8, HOME, 0.0)
    assert result.held and result.reasons == ("non_finite",)
    np.testing.assert_array_equal(result.command, HOME)


def test_bad_state_before_any_reference_is_reported_and_finite():
    result = SafetyFilter(LIMITS, NAMES, dt=DT).step(HOME, [np.nan] * 8, 0.0)
    assert result.held and result.reasons == ("bad_state", "non_finite")
    assert np.isfinite(result.command).all()


def test_joint_order_is_read_by_name():
    command = dict(reversed(list(zip(NAMES, HOME + 1e-5, strict=True))))
    result = started().step(command, HOME, DT)
    assert result.reasons == ()
    np.testing.assert_allclose(result.command, HOME + 1e-5)


def test_position_limit_names_the_joint():
    safety = started()
    command = HOME.copy()
    command[3] = 1.0  # panda_joint4 tops out at 0 rad
    result = safety.step(command, HOME, DT)
    assert "position_limit:panda_joint4" in result.reasons and not result.held


def test_a_far_target_is_approached_along_the_commanded_direction():
    safety = started()
    target = HOME + np.array([0.4, -0.2, 0.1, -0.3, 0.2, 0.1, -0.4, 0.0])
    for k in range(1, 30):
        safety.feed(k * DT)
        result = safety.step(target, HOME, k * DT)
    # Slowed into the target (so it cannot overshoot) and within the velocity limit.
    assert {"approach", "velocity_scaled"} & set(result.reasons) and 0 < result.scale < 1
    moved = result.command - HOME
    np.testing.assert_allclose(
        moved / np.linalg.norm(moved),
        (target - HOME) / np.linalg.norm(target - HOME),
        atol=1e-9,
    )


def test_e_stop_and_watchdog_reasons():
    safety = started()
    safety.engage_e_stop("operator")
    assert safety.e_stopped == "operator"
    assert safety.step(HOME, HOME, DT).reasons == ("e_stop",)
    safety.reset()
    assert safety.step(HOME, HOME, 0.05).reasons == ()
    assert safety.step(HOME, HOME, 0.2).reasons == ("watchdog_hold",)
    assert safety.step(HOME, HOME, 0.6).reasons == ("watchdog_stop",)
    assert safety.step(HOME, HOME, float("nan")).reasons == ("watchdog_stop",)


def test_constructor_rejects_what_step_could_not_fix():
    with pytest.raises(ValueError, match="foo"):
        SafetyFilter(LIMITS, [*NAMES[:-1], "foo"], dt=DT)
    with pytest.raises(ValueError):
        SafetyFilter(LIMITS, NAMES, dt=0.0)
    with pytest.raises(ValueError):
        SafetyFilter(LIMITS, [*NAMES, NAMES[0]], dt=DT)
