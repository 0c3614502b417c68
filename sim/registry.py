"""Making envs: gymnasium ids (`robot_policy/Arm{Reach,Push,Lift}-v0`) and `make_env`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import gymnasium as gym

from robot_policy.robots import DEFAULT_ROBOT

from .env import ArmEnv
from .randomization import RandomizationConfig
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


def make_env(
    task: str,
    *,
    cameras: Sequence[str] = (),
    image_size: tuple[int, int] = (96, 96),
    control_hz: float = 10.0,
    randomization: RandomizationConfig | dict | None = None,
    max_episode_steps: int | None = None,
    visual: str = "simple",
    robot: str = DEFAULT_ROBOT,
) -> ArmEnv:
    """A task env, unwrapped but carrying its gymnasium spec (so `env.spec.make()` rebuilds it).

    cameras: any of "front", "wrist"; image_size: (height, width); control_hz: policy steps per
    second, a whole divisor of the 240 Hz physics rate; max_episode_steps: None takes the task's
    default (reach 5 s, push 12 s, lift 10 s); visual: "simple" draws the robot with its collision
    meshes (fast), "full" with its detailed meshes; robot: a name from `robot_policy.robots`.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    kwargs = {
        "task": task,
        "cameras": tuple(cameras),
        "image_size": tuple(image_size),
        "control_hz": control_hz,
        "randomization": randomization,
        "max_episode_steps": max_episode_steps,
        "visual": visual,
        "robot": robot,
    }
    env = ArmEnv(**kwargs)
    # Built directly rather than by gym.make, whose own max_episode_steps would add a TimeLimit
    # wrapper; the spec still lets gymnasium tools rebuild the same env.
    env.spec = replace(gym.spec(env_id(task)), kwargs=kwargs)
    return env
