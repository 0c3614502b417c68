"""The tasks: what is randomized at reset, what the policy sees of the world, what counts as done.

environment_state layouts (float32, world frame = robot base frame, metres, xyzw quaternions):
  reach: ee.xyz, target.xyz                                  (6)
  push:  ee.xyz, cube.xyz, cube.qxyzw, target.xyz             (13; target on the table top, z = 0)
  lift:  ee.xyz, cube.xyz, cube.qxyzw                         (10)
"ee" is the Panda's grasp target between the fingertips.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .randomization import RandomizationConfig
from .scene import Scene

SUCCESS_DISTANCE = 0.05  # m; reach and push (panda-gym uses the same threshold)
LIFT_HEIGHT = 0.1  # m of the cube centre above the table top

EE_NAMES = ("ee.x", "ee.y", "ee.z")
CUBE_NAMES = ("cube.x", "cube.y", "cube.z", "cube.qx", "cube.qy", "cube.qz", "cube.qw")
TARGET_NAMES = ("target.x", "target.y", "target.z")


@dataclass(frozen=True)
class Layout:
    """The randomized start of an episode."""

    cube: tuple[float, float, float] | None  # x, y, yaw
    target: np.ndarray | None  # xyz


class Task(ABC):
    name: str
    description: str  # the instruction stored with every recorded frame
    episode_seconds: float  # long enough for the scripted expert to finish and hold
    cube: bool
    target: str | None  # the marker drawn: "point", "region" or none
    target_radius: float = 0.0
    state_names: tuple[str, ...]

    @abstractmethod
    def sample_layout(self, rng: np.random.Generator, cfg: RandomizationConfig) -> Layout: ...

    @abstractmethod
    def is_success(self, scene: Scene, layout: Layout) -> bool: ...

    def environment_state(self, scene: Scene, layout: Layout) -> np.ndarray:
        parts = [scene.ee_position()]
        if self.cube:
            parts.extend(scene.cube_pose())
        if self.target:
            parts.append(layout.target)
        return np.concatenate(parts).astype(np.float32)


def _sample_cube(rng: np.random.Generator, cfg: RandomizationConfig) -> tuple[float, float, float]:
    return (
        float(rng.uniform(*cfg.object_x)),
        float(rng.uniform(*cfg.object_y)),
        float(rng.uniform(*cfg.object_yaw)),
    )


class Reach(Task):
    name = "reach"
    description = "move the gripper to the green ball"
    episode_seconds = 5.0
    cube = False
    target = "point"
    target_radius = 0.02
    state_names = EE_NAMES + TARGET_NAMES

    def sample_layout(self, rng: np.random.Generator, cfg: RandomizationConfig) -> Layout:
        low, high = zip(cfg.reach_x, cfg.reach_y, cfg.reach_z, strict=True)
        return Layout(cube=None, target=rng.uniform(low, high))

    def is_success(self, scene: Scene, layout: Layout) -> bool:
        return bool(np.linalg.norm(scene.ee_position() - layout.target) < SUCCESS_DISTANCE)


class Push(Task):
    name = "push"
    description = "push the red cube to the green target"
    episode_seconds = 12.0
    cube = True
    target = "region"
    target_radius = SUCCESS_DISTANCE
    state_names = EE_NAMES + CUBE_NAMES + TARGET_NAMES

    def sample_layout(self, rng: np.random.Generator, cfg: RandomizationConfig) -> Layout:
        cube = _sample_cube(rng, cfg)
        distance = rng.uniform(*cfg.push_distance)
        heading = rng.uniform(-np.pi, np.pi)
        target = np.array(
            [cube[0] + distance * np.cos(heading), cube[1] + distance * np.sin(heading), 0.0]
        )
        return Layout(cube=cube, target=target)

    def is_success(self, scene: Scene, layout: Layout) -> bool:
        cube_xy = scene.cube_pose()[0][:2]
        return bool(np.linalg.norm(cube_xy - layout.target[:2]) < SUCCESS_DISTANCE)


class Lift(Task):
    name = "lift"
    description = "pick up the red cube"
    episode_seconds = 10.0
    cube = True
    target = None
    state_names = EE_NAMES + CUBE_NAMES

    def sample_layout(self, rng: np.random.Generator, cfg: RandomizationConfig) -> Layout:
        return Layout(cube=_sample_cube(rng, cfg), target=None)

    def is_success(self, scene: Scene, layout: Layout) -> bool:
        return bool(scene.cube_pose()[0][2] > LIFT_HEIGHT)


TASK_SPECS: dict[str, Task] = {task.name: task for task in (Reach(), Push(), Lift())}
TASKS: tuple[str, ...] = tuple(TASK_SPECS)
