"""End-effector twists to joint position targets: damped least squares on PyBullet's Jacobian.

Devices speak Cartesian velocity; the arm, and the safety filter in front of it, speak joint
positions. Each tick the twist is mapped to joint velocities with the damped pseudo-inverse
(Wampler's DLS, which stays bounded through singularities where a plain pseudo-inverse blows
up), the Panda's seventh degree of freedom is spent pulling gently toward the home posture (so
the elbow does not wander over a long episode), and the result is integrated into a joint
*reference*, clamped per tick.

The reference is integrated from the last target rather than the measured joints, as MoveIt
Servo does: a position-controlled arm sags and lags behind its target, so re-deriving the target
from the measured joints every tick would let a held pose creep. To keep the reference honest
it may run at most `max_lead` ahead of the measured joints (an arm pushing against the table
does not wind it up).
"""

from __future__ import annotations

import numpy as np

from robot_policy.robots.description import RobotDescription
from robot_policy.robots.kinematics import Kinematics
from robot_policy.teleop.device import TeleopCommand


class TwistIK:
    """Turns one `TeleopCommand` per tick into arm joint targets plus a gripper width.

    The output is in the env's action order (arm joints, then the gripper opening in metres),
    which is also the safety filter's joint order: the caller passes it to
    `SafetyFilter.step`, never straight to the arm.
    """

    def __init__(
        self,
        description: RobotDescription,
        dt: float,
        *,
        damping: float = 0.05,
        max_joint_speed: float = 1.0,
        max_lead: float = 0.2,
        posture_gain: float = 0.5,
    ) -> None:
        for name, value in (
            ("dt", dt),
            ("damping", damping),
            ("max_joint_speed", max_joint_speed),
            ("max_lead", max_lead),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not posture_gain >= 0:
            raise ValueError(f"posture_gain must be >= 0, got {posture_gain}")
        self.dt = float(dt)
        self._kinematics = Kinematics(description)
        self._lower, self._upper = description.arm_lower, description.arm_upper
        self._home = np.array(description.home)
        self._width = description.gripper_max_width
        self._damping2 = damping * damping
        self._max_step = max_joint_speed * dt
        self._max_lead = max_lead
        self._posture_gain = posture_gain
        self._reference: np.ndarray | None = None

    @property
    def reference(self) -> np.ndarray | None:
        """The arm joint targets of the last step (None before the first)."""
        return None if self._reference is None else self._reference.copy()

    def reset(self, joints: np.ndarray) -> None:
        """Start integrating from the measured arm `joints` (a new episode, or a take-over)."""
        self._reference = self._checked(joints)

    def step(self, command: TeleopCommand, joints: np.ndarray) -> np.ndarray:
        """Targets for the next tick: the reference moved by the command's twist over `dt`.

        `joints` are the measured arm joint positions. A disabled command (zero twist) holds
        the reference, so the arm stays where it was let go.
        """
        measured = self._checked(joints)
        if self._reference is None:
            self._reference = measured
        q = self._reference
        if command.enabled:
            jacobian = self._kinematics.twist_jacobian(q)
            # Damped pseudo-inverse J^T (J J^T + λ² I)^-1, as one solve.
            inverse = np.linalg.solve(
                jacobian @ jacobian.T + self._damping2 * np.eye(6), jacobian
            ).T
            velocity = inverse @ command.twist
            null_space = np.eye(len(q)) - inverse @ jacobian
            velocity += null_space @ (self._posture_gain * (self._home - q))
            step = velocity * self.dt
            largest = float(np.abs(step).max())
            if largest > self._max_step:
                step *= self._max_step / largest  # one factor: the Cartesian direction holds
            q = np.clip(q + step, self._lower, self._upper)
        self._reference = measured + np.clip(q - measured, -self._max_lead, self._max_lead)
        return np.append(self._reference, command.gripper * self._width)

    def _checked(self, joints: np.ndarray) -> np.ndarray:
        values = np.asarray(joints, dtype=np.float64)
        if values.shape != self._home.shape or not np.isfinite(values).all():
            raise ValueError(
                f"joints must be {len(self._home)} finite arm joint positions, got {joints!r}"
            )
        return values.copy()
