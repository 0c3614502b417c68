"""End-effector forward kinematics and Jacobians, computed by Pinocchio from the URDF.

The safety filter evaluates kinematics several times per control tick, up to eight when a
barrier is active, so its cost is the filter's cost. Pinocchio (the rigid-body library of the
ROS and optimal-control world) computes the position and the Jacobian in one pass in about
two microseconds; PyBullet's calculateJacobian plus a separate FK took ten times that. The
numbers are the simulator's all the same: both read the same URDF, and a test holds the FK
to PyBullet's link frame.

The whole-arm keep-out tracks more points than the end effector (sphere centres on every
link): `points_and_jacobians` evaluates them all from one Pinocchio pass, reading only the
arm joints' placements, because each point is fixed to the body of its nearest arm joint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pinocchio as pin

from robot_policy.robots.description import RobotDescription

# Row 3k + i, column j: ε_ijk, so that (ω × p)_i = Σ_k p_k·(ε[3k:3k+3] @ ω)_i
_LEVI_CIVITA = np.array(
    [
        [0, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, 0, -1],
        [0, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [-1, 0, 0],
        [0, 0, 0],
    ],
    dtype=float,
)


class Point(NamedTuple):
    """A point fixed to a link: `offset` (m) in the URDF frame of `link`, with every finger
    opened `opening` (m; only a point on a finger moves with it)."""

    link: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    opening: float = 0.0


class Kinematics:
    """FK and Jacobians of `description.ee_link_name`'s frame origin over the arm joints, and
    of `points` after it (`points_and_jacobians`).

    Finger joints are held at zero: they do not move the end-effector frame, and each of
    `points` is fixed at its own opening once, here. Not thread-safe (one scratch `pin.Data`,
    mutated per call); give each thread its own instance.
    """

    def __init__(self, description: RobotDescription, points: Sequence[Point] = ()) -> None:
        self._model = model = pin.buildModelFromUrdf(str(description.urdf_path))
        self._data = model.createData()
        for link in {description.ee_link_name, *(point.link for point in points)}:
            if not model.existFrame(link):
                raise ValueError(f"{description.urdf_path} has no link {link!r}")
        self._frame = model.getFrameId(description.ee_link_name)
        arm = [model.getJointId(n) for n in description.arm_joint_names]
        joints = [model.joints[j] for j in arm]
        self._slots = [j.idx_q for j in joints]
        columns = [j.idx_v for j in joints]
        contiguous = columns == list(range(columns[0], columns[0] + len(columns)))
        # A view when the arm's columns are contiguous (in the Panda's URDF they come first);
        # indexing with a list copies, at ten times the cost.
        self._columns = slice(columns[0], columns[-1] + 1) if contiguous else columns
        self._q = pin.neutral(model)
        self._arm = arm
        self._points = self._fixed(description, [Point(description.ee_link_name), *points])
        self._every = np.arange(self.point_count)
        self._spin = np.empty((4, 3 * len(arm)))  # scratch: [ε·ω; v] of every arm joint

    @property
    def point_count(self) -> int:
        """How many points `points_and_jacobians` returns: the end effector and `points`."""
        return len(self._points[0])

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """World position (m) of the end-effector frame at arm joint positions `q` (7,)."""
        pin.framesForwardKinematics(self._model, self._data, self._configuration(q))
        return self._data.oMf[self._frame].translation.copy()

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(ee_position)/dq, shape (3, 7), at arm joint positions `q`."""
        return self.twist_jacobian(q)[:3]

    def position_and_jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`ee_position(q)` and `jacobian(q)` from one kinematics pass."""
        jacobian = self.twist_jacobian(q)[:3]
        return self._data.oMf[self._frame].translation.copy(), jacobian

    def points_and_jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions (P, 3) and Jacobians d/dq (P, 3, 7) of the end effector, then each
        of `points`, at arm joint positions `q`."""
        if self.point_count == 1:  # the end effector alone: Pinocchio's frame Jacobian is faster
            position, jacobian = self.position_and_jacobian(q)
            return position[None], jacobian[None]
        joint, offsets, support = self._points
        pin.computeJointJacobians(self._model, self._data, self._configuration(q))
        placements = np.array([self._data.oMi[j].homogeneous for j in self._arm])
        positions = (placements.reshape(-1, 4) @ offsets.T).reshape(len(self._arm), 4, -1)
        positions = positions[joint, :, self._every]  # homogeneous, (P, 4)
        # Joint Jacobians in world axes give each joint's (velocity of the point at the world
        # origin v, angular velocity ω); a point p moves at v + ω × p = [p, 1] @ [ε·ω; v], if
        # the joint carries it.
        spatial = self._data.J[:, self._columns]
        self._spin[:3] = (_LEVI_CIVITA @ spatial[3:]).reshape(3, -1)
        self._spin[3] = spatial[:3].ravel()
        jacobians = (positions @ self._spin).reshape(-1, 3, len(self._arm)) * support
        return positions[:, :3], jacobians

    def twist_jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(linear velocity, angular velocity)/dq̇ of the end effector in world axes, shape
        (6, 7): the position rows (all the safety filter needs) and the rotation rows teleop
        IK adds."""
        full = pin.computeFrameJacobian(
            self._model,
            self._data,
            self._configuration(q),
            self._frame,
            pin.LOCAL_WORLD_ALIGNED,
        )
        return full[:, self._columns]

    def _fixed(
        self, description: RobotDescription, points: list[Point]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point: its nearest arm joint (an index into the arm), its offset in that joint's
        frame (homogeneous, (P, 4)), and which arm joints move it ((P, 1, 7) of 0/1)."""
        model, data, arm = self._model, self._data, self._arm
        fingers = [model.joints[model.getJointId(j.name)].idx_q for j in description.fingers]
        joint, offsets, support = [], [], []
        for point in points:
            frame = model.getFrameId(point.link)
            q = pin.neutral(model)
            q[fingers] = point.opening
            pin.forwardKinematics(model, data, q)
            world = pin.updateFramePlacement(model, data, frame).act(np.asarray(point.offset))
            carriers = [
                a for a in arm if a in list(model.supports[model.frames[frame].parentJoint])
            ]
            if not carriers:
                raise ValueError(f"no arm joint moves link {point.link!r}")
            joint.append(arm.index(carriers[-1]))
            offsets.append([*data.oMi[carriers[-1]].actInv(world), 1.0])
            support.append([[float(a in carriers) for a in arm]])
        return np.array(joint), np.array(offsets), np.array(support)

    def _configuration(self, q: np.ndarray) -> np.ndarray:
        values = np.asarray(q, dtype=np.float64)
        if values.shape != (len(self._slots),):
            raise ValueError(f"need {len(self._slots)} arm joint positions, got {values.shape}")
        self._q[self._slots] = values
        return self._q
