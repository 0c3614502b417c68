"""The scripted experts solve their tasks, smoothly, through the same action space as a policy."""

import numpy as np
import pytest

from robot_policy.sim import TASKS, make_env, make_expert

EPISODES = 5
MAX_JOINT_STEP = 0.25  # rad per 10 Hz step: no jumps in the demonstrations


@pytest.mark.parametrize("task", TASKS)
def test_expert_solves_every_seeded_episode_smoothly(task):
    env = make_env(task)
    expert = make_expert(env)
    for seed in range(100, 100 + EPISODES):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        previous, truncated = None, False
        while not truncated:
            action = expert.act(obs)
            assert action.dtype == np.float32 and action in env.action_space
            if previous is not None:
                assert np.abs(action[:7] - previous[:7]).max() < MAX_JOINT_STEP
            previous = action
            obs, _, _, truncated, info = env.step(action)
        assert info["is_success"], f"{task} expert failed seed {seed}"
    env.close()
