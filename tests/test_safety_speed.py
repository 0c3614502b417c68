"""The speed cap and the speed monitor (issue 17.5): limits on what the arm does, not only on
what it is told.

The cap is a stage of the filter's Cartesian step: the tool's commanded speed stays within
tcp_limit (reduced speed, ISO 10218-1: 0.25 m/s), entered while moving fast as a deceleration
within the acceleration limit. The monitor compares measured joint speed with the hardware
(URDF) limits: a first excess slows the arm, a second one while slowed stops it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.safety import SafetyConfig, SafetyLimits
from robot_policy.safety.speed import REDUCED_TCP_SPEED, SPEED_WINDOW, SpeedSettings

ROBOT = load_robot()
NAMES = ROBOT.command_names
HOME = np.append(np.array(ROBOT.home), 0.04)
DT = 0.01
CONFIG = SafetyConfig.for_robot()
LIMITS = CONFIG.joint_limits().arrays(NAMES)
HARDWARE = SafetyLimits.from_robot(ROBOT).arrays(ROBOT.arm_joint_names)["velocity"]
KINEMATICS = Kinematics(ROBOT)
# The cap holds |J·v| half a step ahead: the tool's speed over a tick to second order.
CAP_TOLERANCE = 1.002


def run(target: np.ndarray, ticks: int, reduced_from: int | None = None) -> np.ndarray:
    """The filter's commands toward `target` from home, reduced speed from tick `reduced_from`."""
    safety = CONFIG.build_filter(NAMES, DT)
    commands = []
    for k in range(ticks):
        if k == reduced_from:
            safety.speed.tcp_limit = REDUCED_TCP_SPEED
        safety.feed(k * DT)
        commands.append(safety.step(target, HOME, k * DT).command)
    return np.array(commands)


def tool_speed(commands: np.ndarray) -> np.ndarray:
    points = np.array([KINEMATICS.ee_position(q[:7]) for q in commands])
    return np.linalg.norm(np.diff(points, axis=0), axis=1) / DT


def far_target(offsets) -> np.ndarray:
    target = HOME.copy()
    target[:7] += offsets
    return target


def test_reduced_speed_entered_at_speed_decelerates_within_the_limits_to_the_cap():
    commands = run(far_target([1.5, 0.3, 0, 0, 0, 0, 0]), 200, reduced_from=60)
    speed = tool_speed(commands)
    assert speed[:59].max() > 2 * REDUCED_TCP_SPEED  # fast before: the cap has work to do
    velocity = np.diff(commands, axis=0) / DT
    acceleration = np.abs(np.diff(velocity, axis=0)) / DT
    assert (acceleration[:, :7] <= LIMITS["acceleration"][:7] * (1 + 1e-6)).all()
    # Slowing all the way down to the cap, then never above it; braking at 5 rad/s² from
    # under 2 rad/s takes under 0.4 s.
    reached = 59 + int(np.argmax(speed[59:] <= REDUCED_TCP_SPEED * CAP_TOLERANCE))
    assert 59 < reached < 59 + 40
    assert (np.diff(speed[59 : reached + 1]) <= 1e-9).all()
    assert speed[reached:].max() <= REDUCED_TCP_SPEED * CAP_TOLERANCE


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1.2, 1.2), min_size=7, max_size=7),
    st.floats(0.05, 0.5),
)
def test_in_reduced_speed_from_rest_the_tool_never_exceeds_the_cap(offsets, limit):
    safety = CONFIG.build_filter(NAMES, DT)
    safety.speed.tcp_limit = limit
    target = far_target(offsets)
    commands = []
    for k in range(120):
        safety.feed(k * DT)
        commands.append(safety.step(target, HOME, k * DT).command)
    commands = np.array(commands)
    assert tool_speed(commands).max() <= limit * CAP_TOLERANCE
    velocity = np.abs(np.diff(commands, axis=0)) / DT
    assert (velocity[:, :7] <= LIMITS["velocity"][:7] * (1 + 1e-9)).all()


def test_without_a_cap_the_stage_costs_nothing_and_changes_nothing():
    safety = CONFIG.build_filter(NAMES, DT)
    assert safety.speed is not None and not safety.speed.active
    assert "tcp_speed" not in {r for q in range(3) for r in safety.step(HOME, HOME, q).reasons}


def test_the_filter_runs_inside_the_hardware_limits_by_the_configured_margin():
    scale = CONFIG.limits["velocity_scale"]
    assert scale < 1.0  # config/safety/panda.yaml leaves room for tracking overshoot
    np.testing.assert_allclose(LIMITS["velocity"][:7], HARDWARE * scale)


# --- the monitor -------------------------------------------------------------------------


def controller(**speed) -> Controller:
    safety = SafetyConfig(robot=CONFIG.robot, limits=CONFIG.limits, speed=SpeedSettings(**speed))
    return Controller(NAMES, safety.joint_limits(), ControlConfig(), safety=safety)


class Arm:
    """Measured positions of an arm moving joint by joint at set speeds (continuous)."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl, self.state, self.t = ctl, HOME.copy(), 0.0

    def move(self, seconds: float, speed: float, joint: int = 0, period: float = 0.005) -> None:
        for _ in range(round(seconds / period)):
            self.t += period
            self.state[joint] += speed * period
            self.ctl.observe(self.t, self.state)


def test_an_excess_slows_the_arm_and_one_that_outlasts_braking_stops_it():
    ctl = controller(slow_time=1.0)
    arm = Arm(ctl)
    arm.move(0.2, 0.9 * HARDWARE[0])
    assert ctl.monitor.excesses == 0 and ctl.filter.speed.joint_scale == 1.0
    assert ctl.last_verdict.joint_ratio == pytest.approx(0.9)
    arm.move(0.1, 1.2 * HARDWARE[0])
    assert ctl.monitor.excesses == 1 and ctl.filter.speed.joint_scale == 0.5
    assert "panda_joint1 at 2.61 rad/s, over 1 x 2.17" in ctl.last_verdict.excess
    assert ctl.monitor.grace == pytest.approx(HARDWARE.max() / 5.0)  # 5 rad/s² in panda.yaml
    arm.move(ctl.monitor.grace - 0.15, 1.2 * HARDWARE[0])
    assert ctl.e_stopped is None  # still within the time braking takes
    arm.move(0.1, 1.2 * HARDWARE[0])
    assert ctl.e_stopped.startswith("speed_monitor: panda_joint1 at")
    assert ctl.tick(HOME, arm.t).held  # latched like an e-stop
    ctl.reset()
    assert ctl.e_stopped is None


def test_a_slowdown_that_takes_ends_after_slow_time_and_caps_joint_speed_meanwhile():
    ctl = controller(slow_time=1.0)
    arm = Arm(ctl)
    arm.move(0.1, 1.1 * HARDWARE[3], joint=3)
    assert ctl.filter.speed.joint_scale == 0.5 and ctl.monitor.excesses == 1
    target = far_target([1.0] * 7)
    commands = []
    for k in range(40):
        ctl.filter.feed(arm.t + k * DT)
        commands.append(ctl.filter.step(target, HOME, arm.t + k * DT).command)
    velocity = np.abs(np.diff(np.array(commands), axis=0)) / DT
    assert (velocity[:, :7] <= 0.5 * LIMITS["velocity"][:7] + 1e-9).all()
    arm.move(0.5, 0.4 * HARDWARE[3], joint=3)  # slowed and following: no stop
    assert ctl.filter.speed.joint_scale == 0.5 and ctl.e_stopped is None
    arm.move(0.5, 0.4 * HARDWARE[3], joint=3)
    assert ctl.filter.speed.joint_scale == 1.0 and ctl.e_stopped is None
    assert ctl.monitor.excesses == 1


def test_the_monitor_only_reports_when_told_not_to_act_and_ignores_bad_samples():
    ctl = controller(monitor=False)
    Arm(ctl).move(1.0, 2.0 * HARDWARE[0])
    assert ctl.last_verdict.excess and ctl.filter.speed.joint_scale == 1.0
    assert ctl.monitor.peak_ratio == pytest.approx(2.0)
    ctl.observe(float("nan"), HOME)
    ctl.observe(1.0, np.full(8, np.nan))
    assert ctl.e_stopped is None


def test_the_speed_is_measured_over_a_window_not_one_noisy_sample_pair():
    ctl = controller()
    rng = np.random.default_rng(0)
    for k in range(100):  # 1 kHz, 1e-4 rad of noise: 0.1 rad/s from one pair at 1 ms
        state = HOME.copy()
        state[:7] += rng.normal(0, 1e-4, 7)
        ctl.observe(k * 0.001, state)
    assert ctl.monitor.peak_ratio < 0.02 / SPEED_WINDOW
    assert ctl.monitor.excesses == 0


def test_the_tool_speed_is_monitored_against_the_active_cap():
    ctl = controller()
    ctl.set_reduced_speed(True)
    assert ctl.reduced_speed and ctl.filter.speed.tcp_limit == REDUCED_TCP_SPEED
    Arm(ctl).move(0.1, 0.9 * HARDWARE[0])  # joint 1 turns the whole arm
    assert ctl.last_verdict.tcp_speed > REDUCED_TCP_SPEED
    assert "tool at" in ctl.last_verdict.excess and ctl.monitor.excesses >= 1
    ctl.set_reduced_speed(False)
    assert ctl.filter.speed.tcp_limit is None


def test_a_bad_speed_section_is_refused():
    with pytest.raises(ValueError, match="tcp_limit must be > 0"):
        SpeedSettings(tcp_limit=0.0)
    with pytest.raises(ValueError, match="slow_scale must be <= 1"):
        SpeedSettings(slow_scale=2.0)
