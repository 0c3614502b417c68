"""End-effector forward kinematics and positional Jacobian, computed by PyBullet from the URDF.

PyBullet's own kinematics (on a private DIRECT client, so it never disturbs a simulation the
caller runs) keeps these numbers identical to the simulator's by construction, at a few tens of
microseconds per call, cheap enough for a per-tick safety filter.
"""

from __future__ import annotations

import numpy as np
import pybullet as p

from robot_policy.robots.description import RobotDescription


class Kinematics:
    """FK and Jacobian of `description.ee_link_index`'s frame origin over the arm joints.

    Finger joints are held at zero: they do not move the end-effector frame. Not thread-safe
    (one PyBullet client, mutated per call); give each thread its own instance.
    """

    def __init__(self, description: RobotDescription) -> None:
        self._client = p.connect(p.DIRECT)
        self._body = p.loadURDF(
            str(description.urdf_path),
            useFixedBase=True,
            flags=p.URDF_IGNORE_VISUAL_SHAPES,
            physicsClientId=self._client,
        )
        self._arm = description.arm_indices
        self._ee = description.ee_link_index
        n_joints = p.getNumJoints(self._body, physicsClientId=self._client)
        movable = [
            i
            for i in range(n_joints)
            if p.getJointInfo(self._body, i, physicsClientId=self._client)[2] != p.JOINT_FIXED
        ]
        # calculateJacobian wants every movable DoF and returns a column per DoF.
        self._columns = [movable.index(i) for i in self._arm]
        self._dof_q = [0.0] * len(movable)
        self._dof_zero = [0.0] * len(movable)
        # calculateJacobian's point is given in the link's centre-of-mass frame; the frame origin
        # sits at the inverse of the link's inertial offset.
        state = p.getLinkState(self._body, self._ee, physicsClientId=self._client)
        self._local_point = np.array(p.invertTransform(state[2], state[3])[0])
        self._com_is_origin = not self._local_point.any()

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """World position (m) of the end-effector frame at arm joint positions `q` (7,)."""
        for index, value in zip(self._arm, q, strict=True):
            p.resetJointState(self._body, index, float(value), physicsClientId=self._client)
        state = p.getLinkState(
            self._body, self._ee, computeForwardKinematics=True, physicsClientId=self._client
        )
        # The centre of mass (index 0) comes back in double precision, the frame origin
        # (index 4) in single, too coarse for the Jacobian to agree with; so go via the former.
        if not self._com_is_origin:
            rotation = np.reshape(p.getMatrixFromQuaternion(state[1]), (3, 3))
            return np.array(state[0]) + rotation @ self._local_point
        return np.array(state[0])

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(ee_position)/dq, shape (3, 7), at arm joint positions `q`."""
        return self.twist_jacobian(q)[:3]

    def twist_jacobian(self, q: np.ndarray) -> np.ndarray:
        """d(linear velocity, angular velocity)/dq̇ of the end effector, shape (6, 7): the
        position rows (all the safety filter needs) and the rotation rows teleop IK adds."""
        for slot, value in zip(self._columns, q, strict=True):
            self._dof_q[slot] = float(value)
        linear, angular = p.calculateJacobian(
            self._body,
            self._ee,
            self._local_point.tolist(),
            self._dof_q,
            self._dof_zero,
            self._dof_zero,
            physicsClientId=self._client,
        )
        return np.vstack([linear, angular])[:, self._columns]

    def close(self) -> None:
        """Release the PyBullet client; the instance is unusable afterwards."""
        if p.isConnected(self._client):
            p.disconnect(self._client)

    def __enter__(self) -> Kinematics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
