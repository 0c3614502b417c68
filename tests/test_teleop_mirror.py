"""The scripted device over ROS: a mirror env set from measurements plans like the live env."""

import numpy as np
import pytest

from robot_policy.sim import SimConfig, make_expert
from robot_policy.teleop.mirror import MirrorEnv
from robot_policy.teleop.scripted import ScriptedDevice


def measurements(env) -> tuple[np.ndarray, float, dict[str, float]]:
    """What sim_node publishes: the arm joints, the gripper width (the finger openings summed)
    and /sim/environment_state by field."""
    joints = env.scene.joint_positions()
    state = env.task.environment_state(env.scene, env.layout)
    environment = dict(zip(env.task.state_names, state.tolist(), strict=True))
    return joints[:7], float(joints[7:].sum()), environment


@pytest.mark.parametrize("task", ["reach", "push", "lift"])
def test_the_scripted_device_plans_the_same_on_the_mirror_as_beside_the_live_env(task):
    live = SimConfig().make_env(task)
    mirror = MirrorEnv(task, fps=live.fps)
    try:
        obs, _ = live.reset(seed=7)
        expert = make_expert(live)
        expert.reset()
        for _ in range(8):  # move the arm (and the cube, for push) off the reset layout
            obs, *_ = live.step(expert.act(obs))
        mirror.sync(*measurements(live))
        np.testing.assert_allclose(
            mirror.env.scene.ee_position(), live.scene.ee_position(), atol=1e-6
        )
        if live.scene.cube is not None:
            for got, want in zip(mirror.env.scene.cube_pose(), live.scene.cube_pose(), strict=True):
                np.testing.assert_allclose(got, want, atol=1e-6)
        on_live, on_mirror = ScriptedDevice(live), ScriptedDevice(mirror.env)
        on_live.reset()
        on_mirror.reset()
        for _ in range(3):
            want, got = on_live.read(), on_mirror.read()
            np.testing.assert_allclose(got.twist, want.twist, atol=1e-5)
            assert got.gripper == pytest.approx(want.gripper) and got.events == want.events
        assert mirror.env.task.is_success(mirror.env.scene, mirror.env.layout) == (
            live.task.is_success(live.scene, live.layout)
        )
    finally:
        mirror.close()
        live.close()


def test_sync_names_what_the_measurements_lack():
    live = SimConfig().make_env("push")
    mirror = MirrorEnv("push", fps=10)
    try:
        live.reset(seed=0)
        arm, width, environment = measurements(live)
        without = {k: v for k, v in environment.items() if k != "cube.qw"}
        with pytest.raises(KeyError, match="cube.qw"):
            mirror.sync(arm, width, without)
    finally:
        mirror.close()
        live.close()
