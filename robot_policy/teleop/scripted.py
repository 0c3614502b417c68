"""The sim task's scripted expert as a teleop device, so CI can drive the human teleop path.

The expert plans a gripper position, hand yaw and opening each tick (`robot_policy.sim.experts`)
and turns them into joint targets with PyBullet's IK. Here only the plan is used: the device
commands the twist that closes the gap between the gripper and the plan, as an operator's hand
would, and the same `TwistIK` and safety filter as for a person take it from there. Like the
expert it reads privileged state from the env. It presses "record" on its first tick and again
once the task has stayed solved for `settle_steps` ticks.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p

from robot_policy.sim import make_expert
from robot_policy.teleop.device import Event, TeleopCommand, TeleopDevice

POSITION_GAIN = 5.0  # 1/s: the twist closes 1/2 of the position gap per 10 Hz tick
ORIENTATION_GAIN = 5.0  # 1/s, likewise for the hand's rotation
MAX_LINEAR_SPEED = 0.3  # m/s, above the expert's own 0.25 m/s so the device never lags it
MAX_ANGULAR_SPEED = 2.0  # rad/s, above the expert's 1.5 rad/s turn rate


def rotation_vector(target: tuple[float, ...], current: tuple[float, ...]) -> np.ndarray:
    """Axis times angle (rad, world frame, shortest way) turning quaternion `current` into
    `target` (both xyzw)."""
    _, inverse = p.invertTransform((0.0, 0.0, 0.0), current)
    _, error = p.multiplyTransforms((0.0, 0.0, 0.0), target, (0.0, 0.0, 0.0), inverse)
    if error[3] < 0:  # q and -q are one rotation; this one is the short way round
        error = tuple(-c for c in error)
    axis, angle = p.getAxisAngleFromQuaternion(error)
    return np.asarray(axis) * angle


def _clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


class ScriptedDevice(TeleopDevice):
    """Operates `env` (a `ArmEnv`, possibly wrapped) the way its scripted expert would."""

    help = "scripted: the task's expert drives; it starts and stops recording by itself"

    def __init__(self, env: gym.Env, settle_steps: int = 5) -> None:
        if settle_steps < 0:
            raise ValueError(f"settle_steps must be >= 0, got {settle_steps}")
        self._env = env.unwrapped
        self._expert = make_expert(env)
        self._settle_steps = settle_steps
        self._ready = False  # reset() since the env's reset
        self._recording = False
        self._solved_ticks: int | None = None  # ticks since the task was first solved

    def reset(self) -> None:
        self._expert.reset()
        self._ready, self._recording, self._solved_ticks = True, False, None

    def close(self) -> None:
        """Nothing to give back: the env belongs to the caller."""

    def _read(self) -> TeleopCommand:
        if not self._ready:
            raise RuntimeError("call reset() after env.reset() and before the first read()")
        env, expert = self._env, self._expert
        events: set[Event] = set()
        if not self._recording:
            self._recording = True
            events.add(Event.RECORD)  # first tick: start recording
        elif self._solved_ticks is not None:
            self._solved_ticks += 1
        elif env.task.is_success(env.scene, env.layout):
            self._solved_ticks = 0
        if self._solved_ticks == self._settle_steps:
            events.add(Event.RECORD)  # solved and held: stop and save
        expert.act({})  # advances the expert's plan; it reads the env, not the observation
        position, orientation = env.scene.link_pose(env.robot.ee_link_index)
        wanted = p.getQuaternionFromEuler((np.pi, 0.0, expert.yaw))
        linear = POSITION_GAIN * (expert.command - position)
        angular = ORIENTATION_GAIN * rotation_vector(wanted, tuple(orientation))
        return TeleopCommand(
            linear=_clip_norm(linear, MAX_LINEAR_SPEED),
            angular=_clip_norm(angular, MAX_ANGULAR_SPEED),
            gripper=float(np.clip(expert.gripper / env.robot.gripper_max_width, 0.0, 1.0)),
            enabled=True,
            events=frozenset(events),
        )
