"""Scripted experts: phase-based waypoints for the gripper, turned into joint targets by IK.

The commanded gripper position moves toward the current waypoint at a bounded speed and the
gripper always points down, so demonstrations are smooth and alike from one episode to the next
(what a diffusion policy learns from best). Phases advance on what the gripper and the cube
actually do, which also lets an expert retry after a slip. Experts read privileged state (the
cube and target poses) from the env.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import gymnasium as gym
import numpy as np
import pybullet as p

from .env import ArmEnv

TRAVEL_SPEED = 0.25  # m/s of the commanded gripper position in free space
CAREFUL_SPEED = 0.12  # m/s near and with the cube
TURN_SPEED = 1.5  # rad/s of the commanded hand yaw
ARRIVED = 0.01  # m between the gripper and a waypoint before the next phase starts
ARRIVED_YAW = 0.02  # rad between the commanded and the wanted hand yaw, likewise
CLEARANCE_Z = 0.12  # m; gripper height when moving above the cube


def _wrap(angle: float, period: float) -> float:
    """`angle` shifted by whole periods into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


class Expert(ABC):
    """Call `reset()` after `env.reset()`, then `act(obs)` once per step."""

    def __init__(self, env: gym.Env) -> None:
        self.env: ArmEnv = env.unwrapped
        robot = self.env.robot
        scene = self.env.scene
        self._dt = 1.0 / self.env.fps
        n_fingers = len(robot.fingers)
        self._lower = [*robot.arm_lower, *(j.lower for j in robot.fingers)]
        self._upper = [*robot.arm_upper, *(j.upper for j in robot.fingers)]
        self._ranges = [u - lo for lo, u in zip(self._lower, self._upper, strict=True)]
        self._rest = [*robot.home, *([0.0] * n_fingers)]
        self._scene = scene
        self._width = robot.gripper_max_width

    def reset(self) -> None:
        scene = self._scene
        self.command = scene.ee_position()
        self.gripper = self._width
        self.yaw = 0.0  # commanded turn of the hand about the vertical from its home orientation
        self.yaw_goal = 0.0
        self._start()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._plan()
        turn = TURN_SPEED * self._dt
        error = self.yaw_goal - self.yaw
        self.yaw = self.yaw_goal if abs(error) <= turn else self.yaw + float(np.sign(error)) * turn
        arm = self._inverse_kinematics(self.command, self.yaw)
        return np.append(arm, self.gripper).astype(np.float32)

    @abstractmethod
    def _start(self) -> None:
        """Reset the phase machine for a new episode."""

    @abstractmethod
    def _plan(self) -> None:
        """Advance the phase machine: update `command`, `yaw_goal` and `gripper` for this step."""

    def _move_toward(self, goal: np.ndarray, speed: float) -> bool:
        """Step the commanded position toward `goal`; True once the gripper is there and turned."""
        delta = goal - self.command
        distance = float(np.linalg.norm(delta))
        limit = speed * self._dt
        self.command = (
            goal.copy() if distance <= limit else self.command + delta * (limit / distance)
        )
        ee = self._scene.ee_position()
        turned = abs(self.yaw - self.yaw_goal) < ARRIVED_YAW
        return distance <= limit and turned and float(np.linalg.norm(ee - goal)) < ARRIVED

    def _inverse_kinematics(self, position: np.ndarray, yaw: float) -> np.ndarray:
        """Arm joints putting the grasp point at `position`, fingers down, turned by `yaw`.

        The solver starts from the arm's current joints and its null space pulls toward the home
        pose, so successive targets stay on one smooth branch. (Seeding it through
        `currentPositions` instead returns poses ~5 cm off in PyBullet 3.2.7.)
        """
        scene = self._scene
        orientation = p.getQuaternionFromEuler((np.pi, 0.0, yaw))
        joints = p.calculateInverseKinematics(
            scene.body,
            scene.robot.ee_link_index,
            position.tolist(),
            orientation,
            lowerLimits=self._lower,
            upperLimits=self._upper,
            jointRanges=self._ranges,
            restPoses=self._rest,
            maxNumIterations=100,
            residualThreshold=1e-5,
            physicsClientId=scene.client,
        )
        return np.array(joints[:7])


class ReachExpert(Expert):
    """Straight to the target point, then hold."""

    def _start(self) -> None:
        pass

    def _plan(self) -> None:
        self._move_toward(self.env.layout.target, TRAVEL_SPEED)


class PushExpert(Expert):
    """Closed fingers come down behind the cube and push it along the cube→target line.

    The fingers' broad side faces the push; the push re-aims at every step, and if the cube
    slips sideways off the fingers the gripper rises and approaches again.
    """

    PUSH_Z = 0.03  # fingertips ~1 cm above the table
    STANDOFF = 0.075  # m behind the cube centre before descending: clear of cube and fingers
    REACH_IN = 0.015  # m behind the cube centre the command aims, so the fingers keep pressing
    DONE = 0.01  # m from the target centre where pushing stops
    LATERAL_SLIP = 0.025  # m off the push line that triggers a new approach

    def _start(self) -> None:
        self.phase = "approach"
        self.gripper = 0.0

    def _plan(self) -> None:
        cube = self._scene.cube_pose()[0]
        target = self.env.layout.target
        to_target = target[:2] - cube[:2]
        remaining = float(np.linalg.norm(to_target))
        direction = to_target / max(remaining, 1e-9)
        behind = np.append(cube[:2] - direction * self.STANDOFF, self.PUSH_Z)
        if self.phase == "approach":
            self.yaw_goal = _wrap(float(np.arctan2(direction[1], direction[0])), np.pi)
            if self._move_toward(behind + [0.0, 0.0, CLEARANCE_Z - self.PUSH_Z], TRAVEL_SPEED):
                self.phase = "descend"
        elif self.phase == "descend":
            if self._move_toward(behind, CAREFUL_SPEED):
                self.phase = "push"
        elif self.phase == "push":
            offset = self._scene.ee_position()[:2] - cube[:2]
            lateral = abs(offset[0] * direction[1] - offset[1] * direction[0])
            if remaining < self.DONE:
                self.phase = "retreat"
            elif lateral > self.LATERAL_SLIP:
                self.phase = "rise"
            else:
                aim = np.append(cube[:2] - direction * self.REACH_IN, self.PUSH_Z)
                self._move_toward(aim, CAREFUL_SPEED)
        elif self.phase == "rise":
            if self._move_toward(np.append(self.command[:2], CLEARANCE_Z), CAREFUL_SPEED):
                self.phase = "approach"
        else:  # retreat: lift off the cube and hold
            self._move_toward(np.append(self.command[:2], CLEARANCE_Z), CAREFUL_SPEED)


class LiftExpert(Expert):
    """Open above the cube turned to its faces, descend, close, lift; retry if it slips out."""

    GRASP_Z = 0.025  # grasp point just above the cube centre; fingertips clear the table
    LIFT_Z = 0.25
    CLOSE_STEPS = 5  # policy steps with the gripper closing before lifting
    HELD = LIFT_Z / 2  # cube centre height that shows it came up with the gripper

    def _start(self) -> None:
        self.phase = "above"
        self._closing = 0

    def _plan(self) -> None:
        cube, quat = self._scene.cube_pose()
        if self.phase == "above":
            self.gripper = self._width
            cube_yaw = p.getEulerFromQuaternion(quat)[2]
            self.yaw_goal = _wrap(cube_yaw, np.pi / 2)
            if self._move_toward(np.append(cube[:2], CLEARANCE_Z), TRAVEL_SPEED):
                self.phase = "descend"
        elif self.phase == "descend":
            if self._move_toward(np.append(cube[:2], self.GRASP_Z), CAREFUL_SPEED):
                self.phase = "close"
        elif self.phase == "close":
            self.gripper = 0.0
            self._closing += 1
            if self._closing >= self.CLOSE_STEPS:
                self.phase = "lift"
        else:  # lift, then hold up there
            reached = self._move_toward(np.append(self.command[:2], self.LIFT_Z), CAREFUL_SPEED)
            if reached and cube[2] < self.HELD:
                self._closing = 0
                self.phase = "above"


EXPERTS: dict[str, type[Expert]] = {"reach": ReachExpert, "push": PushExpert, "lift": LiftExpert}


def make_expert(env: gym.Env) -> Expert:
    """The scripted expert for the env's task."""
    return EXPERTS[env.unwrapped.task.name](env)
