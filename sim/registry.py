"""Making envs: gymnasium ids (`robot_policy/Arm{Reach,Push,Lift}-v0`) and `make_env`."""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import gymnasium as gym

from .env import ArmEnv
from .tasks import TASKS


def env_id(task: str) -> str:
    return f"robot_policy/Arm{task.capitalize()}-v0"


for _task in TASKS:
    if env_id(_task) not in gym.registry:
        gym.register(
            env_id(_task),
            entry_point=ArmEnv,
            kwargs={"task": _task},
            order_enforce=False,
            disable_env_checker=True,
        )


def make_env(task: str, **options: Any) -> ArmEnv:
    """A task env, unwrapped but carrying its gymnasium spec (so `env.spec.make()` rebuilds it).

    `options` are `ArmEnv`'s keyword arguments (cameras, image_size, control_hz, randomization,
    max_episode_steps, visual, robot; see its docstring); the spec records every one of them,
    defaults included.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    arguments = inspect.signature(ArmEnv).bind(task, **options)
    arguments.apply_defaults()
    kwargs = dict(arguments.arguments)
    kwargs["cameras"] = tuple(kwargs["cameras"])
    kwargs["image_size"] = tuple(kwargs["image_size"])
    env = ArmEnv(**kwargs)
    # Built directly rather than by gym.make, whose own max_episode_steps would add a TimeLimit
    # wrapper; the spec still lets gymnasium tools rebuild the same env.
    env.spec = replace(gym.spec(env_id(task)), kwargs=kwargs)
    return env
