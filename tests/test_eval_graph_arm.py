"""`GraphArm`: in-process evaluation at control_node's rate executes as the graph does."""

from __future__ import annotations

import numpy as np
import pytest

from robot_policy.eval.graph_arm import GraphArm
from robot_policy.features import STATE_KEY
from robot_policy.sim.arm import SimArm


@pytest.fixture(scope="module")
def sim():
    arm = SimArm("reach")
    yield arm
    arm.close()


def test_physics_keeps_the_ticks_pace_and_commands_are_followed(sim):
    arm = GraphArm(sim, seed=3, period=0.01, fps=10, limit_s=5.0)
    first = arm.observe()
    assert first is not None and first.stamp == 0.0 and arm.observe() is None
    start = first.state.astype(np.float64)
    target = start.copy()
    target[0] += 0.2  # rad, reached over 0.5 s at a steady 0.4 rad/s
    for k in range(100):
        now = k * 0.01
        command = start + (target - start) * min(now / 0.5, 1.0)
        velocity = np.where(now < 0.5, (target - start) / 0.5, 0.0)
        arm.send(command, velocity, now)
        measured = arm.observe()
        assert measured is not None and measured.stamp == pytest.approx(now + 0.01)
    assert arm._substeps == 240  # one second of 240 Hz physics after 100 ticks of 10 ms
    assert arm.steps == 10 and not arm.done
    assert measured.state[0] == pytest.approx(target[0], abs=0.01)
    assert np.abs(measured.state[1:7] - start[1:7]).max() < 0.01
    assert arm.observation[STATE_KEY] is not None and len(arm.executed) == 100


def test_an_episode_ends_at_its_time_limit(sim):
    arm = GraphArm(sim, seed=4, period=0.01, fps=10, limit_s=0.5)
    hold = arm.observe().state.astype(np.float64)
    ticks = 0
    while not arm.done:
        arm.send(hold, np.zeros_like(hold), ticks * 0.01)
        ticks += 1
    assert ticks == 50 and not arm.success and arm.steps == 5


def test_cameras_render_at_the_policys_rate_and_the_newest_frame_stands_between():
    sim = SimArm("push", cameras=("front",), image_size=(32, 32))
    try:
        arm = GraphArm(sim, seed=0, period=0.01, fps=10, limit_s=5.0)
        key = "observation.images.front"
        hold = arm.observe().state.astype(np.float64)
        frames = [arm.observation[key]]
        for k in range(20):
            arm.send(hold, np.zeros_like(hold), k * 0.01)
            frames.append(arm.observe().observation[key])
        fresh = [k for k in range(1, 21) if frames[k] is not frames[k - 1]]
        assert fresh == [10, 20]  # rendered at 0.1 s and 0.2 s only
    finally:
        sim.close()
