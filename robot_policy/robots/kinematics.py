"""End-effector forward kinematics and Jacobians, computed by Pinocchio from the URDF.

The safety filter evaluates kinematics several times per control tick, up to eight when a
barrier is active, so its cost is the filter's cost. Pinocchio (the rigid-body library of the
ROS and optimal-control world) computes the position and the Jacobian in one pass in about
two microseconds; PyBullet's calculateJacobian plus a separate FK took ten times that. The
numbers are the simulator's all the same: both read the same URDF, and a test holds the FK
to PyBullet's link frame.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from robot_policy.robots.description import RobotDescription


class Kinematics:
    """FK and Jacobians of `description.ee_link_name`'s frame origin over the arm joints.

    Finger joints are held at zero: they do not move the end-effector frame. Not thread-safe
    (one scratch `pin.Data`, mutated per call); give each thread its own instance.
    """

    def __init__(self, description: RobotDescription) -> None:
        self._model = pin.buildModelFromUrdf(str(description.urdf_path))
        self._data = self._model.createData()
        if not self._model.existFrame(description.ee_link_name):
            raise ValueError(f"{description.urdf_path} has no link {description.ee_link_name!r}")
        self._frame = self._model.getFrameId(description.ee_link_name)
        model = self._model
        joints = [model.joints[model.getJointId(n)] for n in description.arm_joint_names]
        self._slots = [j.idx_q for j in joints]
        self._columns = [j.idx_v for j in joints]
        self._q = pin.neutral(self._model)

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

    def _configuration(self, q: np.ndarray) -> np.ndarray:
        values = np.asarray(q, dtype=np.float64)
        if values.shape != (len(self._slots),):
            raise ValueError(f"need {len(self._slots)} arm joint positions, got {values.shape}")
        self._q[self._slots] = values
        return self._q
