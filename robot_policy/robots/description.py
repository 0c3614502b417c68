"""What a robot is made of, read once from its URDF so no other module hard-codes joint facts.

Indices are PyBullet's joint indices (a link's index equals the index of the joint that carries
it), which is what the simulator, inverse kinematics and the safety filter address the arm by.
Reading them from PyBullet rather than walking the URDF ourselves keeps them right by
construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data


@dataclass(frozen=True)
class Joint:
    """One actuated joint with the limits its URDF declares (SI units: rad or m, /s, N·m or N)."""

    name: str
    index: int
    lower: float
    upper: float
    max_velocity: float
    max_effort: float


@dataclass(frozen=True)
class RobotDescription:
    """A fixed-base arm with a parallel-jaw gripper whose two fingers each open `finger.upper`."""

    name: str
    urdf_path: Path
    arm: tuple[Joint, ...]
    fingers: tuple[Joint, ...]
    ee_link_index: int
    ee_link_name: str
    home: tuple[float, ...]  # arm joint positions of the "ready" pose episodes start from
    hand_link_name: str  # the gripper's body: where a wrist camera is mounted
    gripper_link_names: tuple[str, ...]  # the hand and fingers (drawn dark in camera images)

    @property
    def arm_indices(self) -> list[int]:
        return [j.index for j in self.arm]

    @property
    def finger_indices(self) -> list[int]:
        return [j.index for j in self.fingers]

    @property
    def arm_joint_names(self) -> list[str]:
        return [j.name for j in self.arm]

    @property
    def arm_lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.arm])

    @property
    def arm_upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.arm])

    @property
    def gripper_max_width(self) -> float:
        """Largest distance between the fingers: every finger at its upper limit."""
        return float(sum(j.upper for j in self.fingers))

    @property
    def command_names(self) -> list[str]:
        """Names of the policy/action vector: the arm joints, then the gripper opening width."""
        return [*self.arm_joint_names, GRIPPER]

    def command_vector(self, positions: Mapping[str, float]) -> np.ndarray:
        """Measured joint positions by name (as in sensor_msgs/JointState) -> the action-space
        vector [arm joints..., gripper width]: the width is the sum of the finger openings.

        Raises KeyError naming every missing joint, so a driver that publishes other joint
        names fails loudly instead of feeding zeros to a policy.
        """
        needed = [*self.arm_joint_names, *(j.name for j in self.fingers)]
        missing = [n for n in needed if n not in positions]
        if missing:
            raise KeyError(f"joint state lacks {missing}")
        arm = [float(positions[n]) for n in self.arm_joint_names]
        return np.array([*arm, sum(float(positions[j.name]) for j in self.fingers)])


# The action/state vector's name for the gripper: its opening width in metres, however many
# finger joints the hardware has (the safety limits use the same name).
GRIPPER = "gripper"
PANDA_URDF = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
PANDA_EE_LINK = "panda_grasptarget"  # between the fingertips
PANDA_HAND_LINK = "panda_hand"
PANDA_FINGER_LINKS = ("panda_leftfinger", "panda_rightfinger")
# Franka's "ready" pose: elbow up, flange pointing down, fingers across the base's y axis.
PANDA_HOME = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)


@cache
def panda() -> RobotDescription:
    """The Franka Emika Panda shipped with pybullet_data (loaded once per process)."""
    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(
            str(PANDA_URDF),
            useFixedBase=True,
            flags=p.URDF_IGNORE_VISUAL_SHAPES,
            physicsClientId=client,
        )
        infos = [
            p.getJointInfo(body, i, physicsClientId=client)
            for i in range(p.getNumJoints(body, physicsClientId=client))
        ]
    finally:
        p.disconnect(client)
    joints = {
        info[1].decode(): Joint(
            name=info[1].decode(),
            index=info[0],
            lower=info[8],
            upper=info[9],
            max_velocity=info[11],
            max_effort=info[10],
        )
        for info in infos
    }
    links = {info[12].decode(): info[0] for info in infos}
    return RobotDescription(
        name="panda",
        urdf_path=PANDA_URDF,
        arm=tuple(joints[n] for n in PANDA_ARM_JOINTS),
        fingers=tuple(joints[n] for n in PANDA_FINGER_JOINTS),
        ee_link_index=links[PANDA_EE_LINK],
        ee_link_name=PANDA_EE_LINK,
        home=tuple(float(q) for q in PANDA_HOME),
        hand_link_name=PANDA_HAND_LINK,
        gripper_link_names=(PANDA_HAND_LINK, *PANDA_FINGER_LINKS),
    )
