"""`config/sim.yaml`: domain randomization plus per-task episode lengths, in one file.

cfg = SimConfig.from_yaml("config/sim.yaml")
env = cfg.make_env("push", cameras=("front",))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_policy.settings import from_yaml, setting

from .env import ArmEnv
from .randomization import RandomizationConfig
from .registry import make_env
from .tasks import TASK_SPECS, TASKS


def _default_episode_seconds() -> dict[str, float]:
    return {name: task.episode_seconds for name, task in TASK_SPECS.items()}


@dataclass(frozen=True)
class SimConfig:
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    episode_seconds: dict[str, float] = setting(
        _default_episode_seconds(), "s per episode, by task (a task left out keeps its own)"
    )

    def __post_init__(self) -> None:
        bad_tasks = sorted(set(self.episode_seconds) - set(TASKS))
        if bad_tasks:
            raise ValueError(f"episode_seconds: unknown tasks {bad_tasks}; choose from {TASKS}")
        object.__setattr__(
            self, "episode_seconds", _default_episode_seconds() | dict(self.episode_seconds)
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> SimConfig:
        """`config/sim.yaml`-style file, loaded strictly (`settings.from_yaml`)."""
        return from_yaml(cls, path)

    def make_env(self, task: str, *, control_hz: float = 10.0, **kwargs: Any) -> ArmEnv:
        """`robot_policy.sim.make_env` with this randomization and episode length."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
        steps = round(self.episode_seconds[task] * control_hz)
        return make_env(
            task,
            control_hz=control_hz,
            randomization=self.randomization,
            max_episode_steps=steps,
            **kwargs,
        )
