"""PyBullet worlds for robot_policy: a Panda on a table, three tasks, scripted experts.

    env = make_env("push", cameras=("front",))
    expert = make_expert(env)
    obs, info = env.reset(seed=0); expert.reset()
    obs, reward, terminated, truncated, info = env.step(expert.act(obs))

The envs are also registered with gymnasium as `robot_policy/Arm{Reach,Push,Lift}-v0`.
"""

from .config import SimConfig
from .env import ArmEnv
from .experts import Expert, make_expert
from .randomization import RandomizationConfig
from .registry import make_env
from .tasks import TASKS

__all__ = [
    "TASKS",
    "Expert",
    "ArmEnv",
    "RandomizationConfig",
    "SimConfig",
    "make_env",
    "make_expert",
]
