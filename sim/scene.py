"""The physical world of every task: a table, a Panda on it, and optionally a cube and a target.

One `Scene` owns one PyBullet DIRECT client, so several envs can live in one process. The robot
base sits at the origin on the table top (z = 0); the table extends in front of it.
"""

from __future__ import annotations

import numpy as np
import pybullet as p

from robot_policy.robots import RobotDescription

PHYSICS_HZ = 240
TABLE_HALF_EXTENTS = (0.6, 0.75, 0.025)
TABLE_CENTER = (0.3, 0.0, -0.025)
FLOOR_Z = -0.75  # catches anything knocked off the table, so positions stay bounded
CUBE_HALF_SIZE = 0.02
CUBE_MASS = 0.1
FRICTION = 0.8  # lateral friction of cube and table unless randomized
VISUALS = ("simple", "full")

TABLE_RGBA = (0.78, 0.68, 0.52, 1.0)
CUBE_RGBA = (0.85, 0.15, 0.15, 1.0)
TARGET_RGBA = (0.15, 0.75, 0.25, 1.0)
ARM_RGBA = (0.92, 0.92, 0.92, 1.0)
HAND_RGBA = (0.25, 0.25, 0.28, 1.0)


class Scene:
    """Bodies and the few physics operations the tasks need, each addressed by this client id.

    `visual="simple"` draws the robot with its collision meshes (~3k triangles instead of ~100k),
    which makes a 96×96 frame about 20× cheaper; physics is identical in both modes.
    """

    def __init__(
        self,
        robot: RobotDescription,
        *,
        cube: bool,
        target: str | None,
        target_radius: float,
        visual: str = "simple",
    ) -> None:
        if visual not in VISUALS:
            raise ValueError(f"unknown visual {visual!r}; choose one of {VISUALS}")
        self.robot = robot
        self.visual = visual
        self._with_cube = cube
        self._target = (target, target_radius) if target else None
        self._efforts = [j.max_effort for j in robot.arm]
        self._finger_efforts = [j.max_effort for j in robot.fingers]
        self.client = p.connect(p.DIRECT)
        self.rebuild()

    def rebuild(self) -> None:
        """Start from an empty world and load every body again.

        Resetting poses alone is not enough for bit-identical episodes: Bullet keeps contact
        manifolds (with warm-start impulses) and broadphase pair order from earlier episodes.
        Rebuilding costs ~7 ms with simple visuals (~30 ms with full ones) per reset.
        """
        cid = self.client
        p.resetSimulation(physicsClientId=cid)
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=cid)
        p.setTimeStep(1.0 / PHYSICS_HZ, physicsClientId=cid)
        self.table = _box(cid, TABLE_HALF_EXTENTS, TABLE_CENTER, TABLE_RGBA, mass=0.0)
        floor = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=cid)
        floor = p.createMultiBody(0.0, floor, -1, (0.0, 0.0, FLOOR_Z), physicsClientId=cid)
        # Without a visual shape PyBullet draws the collision plane, which triples render time.
        p.changeVisualShape(floor, -1, rgbaColor=(0.0, 0.0, 0.0, 0.0), physicsClientId=cid)
        simple = self.visual == "simple"
        self.body = p.loadURDF(
            str(self.robot.urdf_path),
            useFixedBase=True,
            flags=p.URDF_IGNORE_VISUAL_SHAPES if simple else p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
            physicsClientId=cid,
        )
        self.links = {
            p.getJointInfo(self.body, i, physicsClientId=cid)[12].decode(): i
            for i in range(p.getNumJoints(self.body, physicsClientId=cid))
        }
        if simple:
            self._paint_robot()
        self.cube = (
            _box(cid, (CUBE_HALF_SIZE,) * 3, (0.5, 0.0, CUBE_HALF_SIZE), CUBE_RGBA, CUBE_MASS)
            if self._with_cube
            else None
        )
        self.target = _target_marker(cid, *self._target) if self._target else None

    def _paint_robot(self) -> None:
        """Collision meshes carry no colours; a dark hand keeps the gripper visible on the table."""
        dark = {self.links[n] for n in self.robot.gripper_link_names}
        for link in [-1, *self.links.values()]:
            rgba = HAND_RGBA if link in dark else ARM_RGBA
            p.changeVisualShape(self.body, link, rgbaColor=rgba, physicsClientId=self.client)

    def reset_robot(self, arm: np.ndarray, gripper_width: float) -> None:
        for index, q in zip(self.robot.arm_indices, arm, strict=True):
            p.resetJointState(self.body, index, float(q), 0.0, physicsClientId=self.client)
        for index in self.robot.finger_indices:
            p.resetJointState(self.body, index, gripper_width / 2, 0.0, physicsClientId=self.client)
        self.command(arm, gripper_width)

    def command(self, arm: np.ndarray, gripper_width: float) -> None:
        """Position targets for the joint motors; they hold until the next command."""
        p.setJointMotorControlArray(
            self.body,
            self.robot.arm_indices,
            p.POSITION_CONTROL,
            targetPositions=[float(q) for q in arm],
            forces=self._efforts,
            physicsClientId=self.client,
        )
        p.setJointMotorControlArray(
            self.body,
            self.robot.finger_indices,
            p.POSITION_CONTROL,
            targetPositions=[gripper_width / 2] * 2,
            forces=self._finger_efforts,
            physicsClientId=self.client,
        )

    def step(self, substeps: int) -> None:
        for _ in range(substeps):
            p.stepSimulation(physicsClientId=self.client)

    def joint_positions(self) -> np.ndarray:
        """Arm joint positions followed by each finger's opening (m)."""
        indices = self.robot.arm_indices + self.robot.finger_indices
        states = p.getJointStates(self.body, indices, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def link_pose(self, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and xyzw quaternion of a robot link's frame."""
        state = p.getLinkState(
            self.body, link, computeForwardKinematics=True, physicsClientId=self.client
        )
        return np.array(state[4]), np.array(state[5])

    def ee_position(self) -> np.ndarray:
        return self.link_pose(self.robot.ee_link_index)[0]

    def cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = p.getBasePositionAndOrientation(self.cube, physicsClientId=self.client)
        return np.array(pos), np.array(quat)

    def place_cube(self, x: float, y: float, yaw: float) -> None:
        quat = p.getQuaternionFromEuler((0.0, 0.0, yaw))
        p.resetBasePositionAndOrientation(
            self.cube, (x, y, CUBE_HALF_SIZE), quat, physicsClientId=self.client
        )

    def place_target(self, position: np.ndarray) -> None:
        p.resetBasePositionAndOrientation(
            self.target, position.tolist(), (0.0, 0.0, 0.0, 1.0), physicsClientId=self.client
        )

    def set_cube_dynamics(self, mass: float, friction: float) -> None:
        p.changeDynamics(
            self.cube, -1, mass=mass, lateralFriction=friction, physicsClientId=self.client
        )
        p.changeDynamics(self.table, -1, lateralFriction=friction, physicsClientId=self.client)

    def paint(self, body: int, rgba: tuple[float, float, float, float]) -> None:
        """Recolour a body for one episode; the next `rebuild` restores its nominal colour."""
        p.changeVisualShape(body, -1, rgbaColor=rgba, physicsClientId=self.client)

    def close(self) -> None:
        if self.client >= 0 and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = -1


def _box(
    client: int, half_extents: tuple[float, ...], center: tuple[float, ...], rgba, mass: float
) -> int:
    collision = p.createCollisionShape(p.GEOM_BOX, halfExtents=half_extents, physicsClientId=client)
    visual = p.createVisualShape(
        p.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba, physicsClientId=client
    )
    body = p.createMultiBody(mass, collision, visual, center, physicsClientId=client)
    p.changeDynamics(body, -1, lateralFriction=FRICTION, physicsClientId=client)
    return body


def _target_marker(client: int, kind: str, radius: float) -> int:
    """A visual-only goal: a sphere for a point in space, a flat disc for a region on the table."""
    if kind == "point":
        visual = p.createVisualShape(
            p.GEOM_SPHERE, radius=radius, rgbaColor=TARGET_RGBA, physicsClientId=client
        )
    elif kind == "region":
        visual = p.createVisualShape(
            p.GEOM_CYLINDER,
            radius=radius,
            length=0.002,
            rgbaColor=TARGET_RGBA,
            physicsClientId=client,
        )
    else:
        raise ValueError(f"unknown target kind {kind!r}; choose 'point' or 'region'")
    return p.createMultiBody(0.0, -1, visual, (0.0, 0.0, 0.0), physicsClientId=client)
