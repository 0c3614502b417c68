"""The control tick: scheduler → safety filter, as the control node and the runtime use it."""

import numpy as np
import pytest

from robot_policy.robots import load_robot
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.safety import SafetyConfig, SafetyLimits

NAMES = [*load_robot().arm_joint_names, "gripper"]
HOME = np.append(np.array(load_robot().home), 0.04)


def make(**kw) -> Controller:
    return Controller(NAMES, SafetyLimits.from_robot(load_robot()), ControlConfig(**kw))


def test_follows_a_chunk_within_limits_and_interpolates():
    ctl = make(rate_hz=100.0)
    target = HOME + 0.01
    actions = np.linspace(HOME, target, 16)
    assert ctl.add_chunk(TimedChunk(0.0, 0.1, actions), now=0.0)
    out = [ctl.tick(HOME, now=k * 0.01).command for k in range(160)]
    # Small motion: nothing is changed, and at t = 0.05 it is halfway between actions 0 and 1.
    np.testing.assert_allclose(out[5], actions[0] + 0.5 * (actions[1] - actions[0]), atol=1e-9)
    assert ctl.stats.interventions == 0
    assert ctl.stats.ticks_without_chunk == 0


def test_no_chunk_holds_then_stops_and_reports_why():
    ctl = make(rate_hz=100.0, hold_timeout=0.1, stop_timeout=0.3)
    ctl.add_chunk(TimedChunk(0.0, 0.1, np.tile(HOME, (4, 1))), now=0.0)
    results = [ctl.tick(HOME, now=k * 0.01) for k in range(100)]
    assert not results[10].held
    assert results[60].held and "watchdog_hold" in results[60].reasons
    assert results[99].held and "watchdog_stop" in results[99].reasons
    assert ctl.stats.reasons["watchdog_stop"] > 0


def test_e_stop_latches_until_reset_and_reset_drops_old_chunks():
    ctl = make()
    ctl.add_chunk(TimedChunk(0.0, 0.1, np.tile(HOME + 0.05, (16, 1))), now=0.0)
    ctl.tick(HOME, 0.0)
    ctl.engage_e_stop()
    assert ctl.tick(HOME, 0.01).reasons == ("e_stop",)
    ctl.reset()
    assert ctl.e_stopped is None
    assert ctl.scheduler.action(0.02) is None


def test_wrong_width_chunk_is_an_error():
    with pytest.raises(ValueError, match="7 joints"):
        make().add_chunk(TimedChunk(0.0, 0.1, np.zeros((4, 7))), now=0.0)


def test_from_dict_rejects_unknown_keys_and_builds_scheduler():
    cfg = ControlConfig.from_dict({"rate_hz": 50, "scheduler": {"strategy": "ensemble"}})
    assert cfg.dt == 0.02 and cfg.scheduler.strategy == "ensemble" and cfg.scheduler.interpolate
    with pytest.raises(ValueError, match=r"^control: unknown keys \['rate'\]"):
        ControlConfig.from_dict({"rate": 50})
    with pytest.raises(ValueError, match=r"^control.scheduler: unknown keys \['strat'\]"):
        ControlConfig.from_dict({"scheduler": {"strat": "x"}})
    with pytest.raises(ValueError, match="control.scheduler.n_action_steps: must be >= 1, got 0"):
        ControlConfig.from_dict({"scheduler": {"n_action_steps": 0}})


def test_a_safety_config_adds_the_barriers_and_reports_them():
    safety = SafetyConfig.for_robot()  # workspace box + table top, 2 cm margin
    ctl = Controller(NAMES, safety.joint_limits(), ControlConfig(), safety=safety)
    kinematics = ctl.filter.barriers.kinematics
    # A chunk that lowers the hand 4 cm per action, 0.64 m in all: through the table top.
    actions = [HOME]
    for _ in range(15):
        q = actions[-1]
        down = np.linalg.pinv(kinematics.jacobian(q[:7])) @ np.array([0.0, 0.0, -0.04])
        actions.append(q + np.append(down, 0.0))
    ctl.add_chunk(TimedChunk(0.0, 0.1, np.array(actions)), now=0.0)
    heights = []
    for k in range(200):
        result = ctl.tick(HOME, now=k * 0.01)
        heights.append(kinematics.ee_position(result.command[:7])[2])
    assert ctl.stats.reasons["obstacle"] > 0
    assert min(heights) >= 0.02 - 1e-9


def test_a_safety_config_must_agree_with_the_limits():
    with pytest.raises(ValueError, match="joint_limits"):
        Controller(
            NAMES,
            SafetyLimits.from_robot(load_robot(), margin=0.1),
            safety=SafetyConfig(workspace=None, obstacles=()),
        )


@pytest.mark.parametrize("hold_timeout", [0.02, 0.1])
def test_a_watchdog_hold_brakes_a_moving_arm_within_the_acceleration_limit(hold_timeout):
    """Hold = decelerate to rest within the acceleration limit, from the hold's start, and stay
    there: a rate-limited arm that is still short of (or past) the last action is not driven on
    to it by a source that has gone quiet."""
    ctl = make(rate_hz=100.0, hold_timeout=hold_timeout, stop_timeout=0.5)
    dt = ctl.config.dt
    accel = SafetyLimits.from_robot(load_robot()).arrays(NAMES)["acceleration"]
    actions = np.tile(HOME, (16, 1))
    actions[:, 0] += 0.15 * np.arange(16)  # joint 1 at 1.5 rad/s, the last action at t = 1.5 s
    ctl.add_chunk(TimedChunk(0.0, 0.1, actions), now=0.0)
    commands, held = [], []
    for k in range(300):
        result = ctl.tick(HOME, now=k * dt)
        commands.append(result.command)
        held.append("watchdog_hold" in result.reasons)
    velocity = np.diff(commands, axis=0) / dt  # velocity[k]: from tick k to tick k + 1
    start = held.index(True)  # the first hold tick; its command ends velocity[start - 1]
    assert start * dt > 1.5 + hold_timeout  # no chunk has covered now for hold_timeout
    braking = velocity[start - 1 :]
    assert braking[0, 0] > 0.3  # moving when the hold begins
    steps = np.abs(np.diff(braking, axis=0))
    assert (steps <= accel * dt * (1 + 1e-9)).all(), steps.max(axis=0)
    # Decelerating from the hold's start (no speed-up) until rest, then at rest for good.
    rest = int(np.argmax(braking[:, 0] <= 1e-12))
    assert rest > 0 and (np.diff(braking[: rest + 1, 0]) <= 1e-12).all(), braking[: rest + 1, 0]
    np.testing.assert_allclose(braking[rest:], 0.0, atol=1e-12)
