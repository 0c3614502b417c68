"""Simulation throughput on the push scene (what `robot-policy bench sim` reports).

An env step is 10 Hz control over 240 Hz physics (24 physics steps). Env steps replay one
recorded expert episode, so the figures time the env (physics, state read-out, rendering, episode
resets) and not the expert's inverse kinematics. Renders are one 96×96 front-camera frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pybullet as p

from robot_policy.sim.env import ArmEnv
from robot_policy.sim.experts import make_expert
from robot_policy.sim.registry import make_env

TASK = "push"
SEED = 0


def _rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls of `fn` per second over at least `seconds` of wall time."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls == 0:
        fn()
        calls += 1
    return calls / elapsed


def _expert_actions(env: ArmEnv) -> list[np.ndarray]:
    expert = make_expert(env)
    obs, _ = env.reset(seed=SEED)
    expert.reset()
    actions = []
    for _ in range(env.max_episode_steps):
        actions.append(expert.act(obs))
        obs, *_ = env.step(actions[-1])
    return actions


def _env_steps_per_s(env: ArmEnv, actions: list[np.ndarray], seconds: float) -> float:
    cursor = len(actions)

    def step() -> None:
        nonlocal cursor
        if cursor == len(actions):
            env.reset(seed=SEED)
            cursor = 0
        env.step(actions[cursor])
        cursor += 1

    return _rate(step, seconds)


def _render_ms(visual: str, seconds: float) -> float:
    env = make_env(TASK, cameras=("front",), visual=visual)
    try:
        env.reset(seed=SEED)
        return 1000.0 / _rate(lambda: env.render_camera("front"), seconds)
    finally:
        env.close()


def run(seconds_per_case: float = 2.0) -> dict[str, float]:
    """Throughput figures, each timed for about `seconds_per_case` of wall time."""
    state_env = make_env(TASK)
    try:
        actions = _expert_actions(state_env)
        state_env.reset(seed=SEED)
        client = state_env.scene.client
        physics = _rate(lambda: p.stepSimulation(physicsClientId=client), seconds_per_case)
        state = _env_steps_per_s(state_env, actions, seconds_per_case)
    finally:
        state_env.close()
    image_env = make_env(TASK, cameras=("front",))
    try:
        images = _env_steps_per_s(image_env, actions, seconds_per_case)
    finally:
        image_env.close()
    return {
        "physics_steps_per_s": physics,
        "env_steps_per_s_state": state,
        "env_steps_per_s_images": images,
        "render_ms_simple": _render_ms("simple", seconds_per_case),
        "render_ms_full": _render_ms("full", seconds_per_case),
    }
