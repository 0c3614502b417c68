"""Limits come from the URDF plus documented defaults, and config typos fail loudly."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy.robots import load_robot
from robot_policy.safety import GRIPPER, SafetyLimits
from robot_policy.safety.limits import DEFAULT_ACCELERATION, DEFAULT_JERK


def test_panda_limits_apply_margin_to_the_arm_only():
    robot = load_robot()
    limits = SafetyLimits.from_robot(robot, margin=0.1, velocity_scale=0.5)
    assert limits.joint_names == (*robot.arm_joint_names, GRIPPER)
    np.testing.assert_allclose(limits.lower[:7], robot.arm_lower + 0.1)
    np.testing.assert_allclose(limits.upper[:7], robot.arm_upper - 0.1)
    assert limits.gripper_width_range == (0.0, robot.gripper_max_width)
    assert limits.velocity[0] == pytest.approx(robot.arm[0].max_velocity * 0.5)
    assert limits.acceleration[0] == DEFAULT_ACCELERATION
    assert limits.jerk[0] == DEFAULT_JERK


def test_from_dict_overrides_and_accepts_per_joint_lists():
    limits = SafetyLimits.from_dict(
        load_robot(),
        {"margin": 0.0, "acceleration": [1, 2, 3, 4, 5, 6, 7], "gripper_max_width": 0.05},
    )
    assert limits.acceleration[:7] == (1, 2, 3, 4, 5, 6, 7)
    assert limits.lower[0] == load_robot().arm[0].lower
    assert limits.gripper_width_range == (0.0, 0.05)


def test_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="velocty_scale"):
        SafetyLimits.from_dict(load_robot(), {"velocty_scale": 0.5, "margin": 0.1})


@pytest.mark.parametrize(
    "config",
    [{"margin": 2.0}, {"velocity_scale": 0.0}, {"jerk": -1.0}, {"acceleration": [1.0, 2.0]}],
)
def test_impossible_limits_are_rejected(config):
    with pytest.raises(ValueError):
        SafetyLimits.from_dict(load_robot(), config)


def test_arrays_follow_the_requested_order():
    limits = SafetyLimits.from_robot(load_robot())
    picked = limits.arrays([GRIPPER, "panda_joint4"])
    assert picked["upper"][0] == limits.gripper_width_range[1]
    assert picked["upper"][1] == limits.upper[3]
    with pytest.raises(ValueError, match="foo"):
        limits.arrays(["foo"])
