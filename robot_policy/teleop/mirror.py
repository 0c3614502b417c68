"""A task env that is not simulated but set to what a cell reports: the scripted expert's eyes
on a ROS graph.

`ScriptedDevice` and the experts read poses from their env (the gripper from the arm's joints,
the cube and target from the scene). On a ROS graph the simulation runs in sim_node, so the
teleop node keeps this mirror instead: a PyBullet world of the same task, never stepped, whose
cube and target are set from /sim/environment_state (named by the task's fields, e.g.
`cube.x`) and whose arm is set to the joints the caller chooses before every read. The device
then plans exactly as it does beside a live env.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pybullet as p

from robot_policy.sim import SimConfig
from robot_policy.sim.env import ArmEnv
from robot_policy.sim.tasks import CUBE_NAMES, TARGET_NAMES, Layout


class MirrorEnv:
    """`env` is the mirrored `ArmEnv` (hand it to `ScriptedDevice`); call `sync` each tick."""

    def __init__(self, task: str, fps: float) -> None:
        self.env: ArmEnv = SimConfig().make_env(task, control_hz=fps)
        self.env.reset(seed=0)  # builds the scene; every pose is overwritten by sync()
        self.state_names = tuple(self.env.task.state_names)

    def sync(self, arm: np.ndarray, gripper_width: float, environment: Mapping[str, float]) -> None:
        """Put the arm at joint positions `arm` with the fingers `gripper_width` apart, and the
        objects where `environment` (the environment-state fields by name) says they are."""
        missing = [n for n in self.state_names if n not in environment]
        if missing:
            raise KeyError(f"environment state lacks {missing} (task {self.env.task.name!r})")
        scene = self.env.scene
        scene.reset_robot(np.asarray(arm, dtype=np.float64), float(gripper_width))
        if scene.cube is not None:
            pose = [float(environment[n]) for n in CUBE_NAMES]
            p.resetBasePositionAndOrientation(
                scene.cube, pose[:3], pose[3:], physicsClientId=scene.client
            )
        target = None
        if scene.target is not None:
            target = np.array([float(environment[n]) for n in TARGET_NAMES])
            scene.place_target(target)
        self.env.layout = Layout(cube=None, target=target)

    def close(self) -> None:
        self.env.close()
