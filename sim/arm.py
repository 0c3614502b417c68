"""A simulated arm that behaves like a ros2_control arm: setpoints in, joint states out, in time.

`ArmEnv` advances one policy step per call, which suits datasets and fast evaluation. A ROS
graph needs the other view: physics running on its own clock, a controller accepting
trajectories or position commands at any moment, joint states and camera frames published as
they happen. `SimArm` is that view over the same env, task and scene, so the ROS path and the
in-process path simulate exactly the same world.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pybullet as p

from robot_policy.robots import DEFAULT_ROBOT

from .config import SimConfig
from .env import ArmEnv
from .scene import PHYSICS_HZ
from .trajectory import Trajectory, validate


class SimArm:
    """Physics + a JTC-like controller for one task; not thread-safe (the node holds a lock).

    Controller joints are the action vector's names (arm joints + "gripper", the finger opening
    width); published joint states use the URDF's joint names (arm + both finger joints), as a
    real Franka driver does.
    """

    def __init__(
        self,
        task: str,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (96, 96),
        sim_config: SimConfig | None = None,
        allow_nonzero_end_velocity: bool = True,
        robot: str = DEFAULT_ROBOT,
    ) -> None:
        self.env: ArmEnv = (sim_config or SimConfig()).make_env(
            task, cameras=cameras, image_size=image_size, robot=robot
        )
        self.robot = self.env.robot
        self.controller_joints = self.robot.command_names
        self.state_joint_names = [
            *self.robot.arm_joint_names,
            *(j.name for j in self.robot.fingers),
        ]
        self.environment_names = list(self.env.features["observation.environment_state"]["names"])
        self.allow_nonzero_end_velocity = allow_nonzero_end_velocity
        self.physics_dt = 1.0 / PHYSICS_HZ
        self._low = self.env.action_space.low.astype(np.float64)
        self._high = self.env.action_space.high.astype(np.float64)
        self._setpoint = np.zeros(len(self.controller_joints))
        self._trajectory: Trajectory | None = None
        self.succeeded = False
        self.episode = -1

    def reset(self, seed: int) -> None:
        """Start a new episode: the arm at home holding still, the success latch cleared."""
        self.env.reset(seed=seed)
        self._trajectory = None
        self._setpoint = self._measured_command()
        self.succeeded = False
        self.episode += 1

    def accept_trajectory(self, *message: Any, now: float) -> None:
        """Replace the active trajectory; raises TrajectoryRejected (and keeps the old one).

        `message` is the received JointTrajectory as `validate` takes it after the controller's
        joints (joint_names, stamp, times, positions, velocities); playback starts from the
        setpoint at `now`, the time of receipt.
        """
        self._trajectory = validate(
            self.controller_joints,
            *message,
            now=now,
            origin=self.setpoint(now),
            origin_velocity=self.setpoint_velocity(now),
            allow_nonzero_end_velocity=self.allow_nonzero_end_velocity,
        )

    def accept_positions(self, values: Sequence[float]) -> None:
        """A forward position controller's command: the setpoint, immediately, no timing."""
        command = np.asarray(values, dtype=np.float64)
        if command.shape != (len(self.controller_joints),):
            raise ValueError(
                f"expected {len(self.controller_joints)} positions "
                f"({', '.join(self.controller_joints)}), got {command.size}"
            )
        if not np.isfinite(command).all():
            raise ValueError("non-finite position command")
        self._trajectory = None
        self._setpoint = command

    def setpoint(self, now: float) -> np.ndarray:
        if self._trajectory is not None:
            return self._trajectory.sample(now)
        return self._setpoint.copy()

    def setpoint_velocity(self, now: float) -> np.ndarray:
        """The active trajectory's velocity at `now` (a one-millisecond difference); zero for a
        held position."""
        if self._trajectory is None:
            return np.zeros_like(self._setpoint)
        h = 1e-3
        return (self._trajectory.sample(now) - self._trajectory.sample(now - h)) / h

    def advance(self, substeps: int, now: float) -> None:
        """Step physics `substeps` times, ending at `now`, each substep driving the motors
        toward the setpoint for its own time (a trajectory is followed, not sampled once)."""
        scene = self.env.scene
        for i in range(substeps):
            t = now - (substeps - 1 - i) * self.physics_dt
            target = np.clip(self.setpoint(t), self._low, self._high)
            scene.command(target[:-1], float(target[-1]))
            scene.step(1)
        if not self.succeeded and self.env.layout is not None:
            self.succeeded = bool(self.env.task.is_success(scene, self.env.layout))

    def observation(self, render: bool = True) -> dict[str, np.ndarray]:
        """The policy's view now, as `ArmEnv.step` returns it; cameras only if `render`."""
        return self.env._observation(render)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities of `state_joint_names`."""
        scene = self.env.scene
        indices = self.robot.arm_indices + self.robot.finger_indices
        states = p.getJointStates(scene.body, indices, physicsClientId=scene.client)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def environment_state(self) -> np.ndarray:
        assert self.env.layout is not None, "reset() first"
        return self.env.task.environment_state(self.env.scene, self.env.layout)

    def render(self, camera: str) -> np.ndarray:
        return self.env.render_camera(camera)

    def close(self) -> None:
        self.env.close()

    def _measured_command(self) -> np.ndarray:
        positions, _ = self.joint_state()
        return self.robot.command_vector(dict(zip(self.state_joint_names, positions, strict=True)))
