"""Domain randomization: each option changes what it should, and only under the seed's control."""

from pathlib import Path

import numpy as np
import pybullet as p
import pytest

from robot_policy.sim import RandomizationConfig, SimConfig, make_env

CONFIG = Path(__file__).resolve().parents[1] / "config" / "sim.yaml"


def first_obs(randomization=None, task="push", seed=0, cameras=()):
    env = make_env(task, randomization=randomization, cameras=cameras)
    obs, _ = env.reset(seed=seed)
    return env, obs


def test_config_file_matches_the_code_defaults():
    assert SimConfig.from_yaml(CONFIG) == SimConfig()


def test_sim_config_builds_envs_with_its_episode_length(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text("randomization:\n  state_noise_std: 0.01\nepisode_seconds:\n  push: 3\n")
    cfg = SimConfig.from_yaml(path)
    env = cfg.make_env("push", control_hz=20)
    assert env.max_episode_steps == 60 and env.randomization.state_noise_std == 0.01
    env.close()


@pytest.mark.parametrize(
    "values, match",
    [
        ({"frction": [0.1, 1.0]}, "unknown"),
        ({"cube_mass": [0.3, 0.1]}, "low <= high"),
        ({"state_noise_std": -1.0}, ">= 0"),
    ],
)
def test_bad_config_is_rejected(values, match):
    with pytest.raises(ValueError, match=match):
        RandomizationConfig.from_dict(values)


def test_object_and_target_poses_vary_within_their_ranges():
    cfg = RandomizationConfig()
    env = make_env("push")
    cubes, distances = [], []
    for seed in range(10):
        state = env.reset(seed=seed)[0]["observation.environment_state"]
        cube, target = state[3:6], state[10:13]
        cubes.append(cube)
        distances.append(np.linalg.norm(target[:2] - cube[:2]))
        assert cfg.object_x[0] <= cube[0] <= cfg.object_x[1]
        assert cfg.object_y[0] <= cube[1] <= cfg.object_y[1]
    assert len({tuple(c) for c in cubes}) == 10
    assert np.all((np.array(distances) > 0.1 - 1e-6) & (np.array(distances) < 0.15 + 1e-6))
    env.close()
    reach = make_env("reach")
    targets = {tuple(reach.reset(seed=s)[0]["observation.environment_state"][3:]) for s in range(5)}
    assert len(targets) == 5
    reach.close()


def test_friction_and_mass_are_drawn_from_their_ranges():
    env, _ = first_obs({"friction": [0.3, 0.4], "cube_mass": [0.5, 0.6]})
    info = p.getDynamicsInfo(env.scene.cube, -1, physicsClientId=env.scene.client)
    mass, friction = info[0], info[1]
    assert 0.5 <= mass <= 0.6 and 0.3 <= friction <= 0.4
    env.close()


def test_state_noise_perturbs_only_the_robot_state():
    clean_env, clean = first_obs()
    noisy_env, noisy = first_obs({"state_noise_std": 0.01})
    difference = noisy["observation.state"] - clean["observation.state"]
    assert 0 < np.abs(difference).max() < 0.1
    assert np.array_equal(
        noisy["observation.environment_state"], clean["observation.environment_state"]
    )
    clean_env.close()
    noisy_env.close()


def test_camera_jitter_moves_the_front_camera_but_not_the_world():
    still_env, still = first_obs(cameras=("front",))
    moved_env, moved = first_obs({"camera_jitter": 0.05}, cameras=("front",))
    assert not np.array_equal(still["observation.images.front"], moved["observation.images.front"])
    assert np.array_equal(
        still["observation.environment_state"], moved["observation.environment_state"]
    )
    still_env.close()
    moved_env.close()


def test_home_joint_noise_moves_the_start_pose():
    env, obs = first_obs({"home_joint_noise": 0.1})
    offset = obs["observation.state"][:7] - np.array(env.robot.home)
    assert 0 < np.abs(offset).max() <= 0.1 + 1e-6
    env.close()


def test_action_latency_delays_actions_by_whole_steps():
    env, start = first_obs({"action_latency_steps": 2}, task="reach")
    target = np.append(np.array(env.robot.home) + 0.3, 0.04).astype(np.float32)
    states = [env.step(target)[0]["observation.state"] for _ in range(3)]
    still = np.abs(states[1] - start["observation.state"]).max()
    moved = np.abs(states[2] - start["observation.state"]).max()
    assert still < 1e-3 < 0.1 < moved
    env.close()


def test_randomized_episodes_are_still_reproducible():
    everything = {
        "friction": [0.5, 1.0],
        "cube_mass": [0.05, 0.3],
        "camera_jitter": 0.02,
        "state_noise_std": 0.01,
        "action_latency_steps": 1,
        "home_joint_noise": 0.05,
    }
    runs = []
    for _ in range(2):
        env = make_env("push", randomization=everything, cameras=("front",))
        env.action_space.seed(0)
        obs, _ = env.reset(seed=5)
        trace = [obs]
        for _ in range(5):
            trace.append(env.step(env.action_space.sample())[0])
        runs.append(trace)
        env.close()
    for a, b in zip(*runs, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
