"""The whole-arm keep-out: every link, not only the end effector, stays off the table.

"Off the table" is judged independently of the filter's own kinematics: PyBullet, on its own
client with the URDF, places every link (fingers at the commanded opening) and its collision
mesh, and the fitted spheres are checked to contain those meshes.
"""

from __future__ import annotations

from dataclasses import replace

import hypothesis
import numpy as np
import pybullet as p
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from robot_policy.bench.safety import CBF_SCENE
from robot_policy.robots import load_robot
from robot_policy.robots.kinematics import Kinematics, Point
from robot_policy.safety import GRIPPER, LinksConfig, SafetyConfig
from robot_policy.safety.arm_model import lever_arms
from robot_policy.safety.links import collision_links, tracked

ROBOT = load_robot()
NAMES = (*ROBOT.arm_joint_names, GRIPPER)
HOME = np.array([*ROBOT.home, 0.04])
DT = 0.01
SHIPPED = SafetyConfig.for_robot()  # table top at z = 0, links kept 1 cm off it
MARGIN = SHIPPED.links.margin
SPHERES = SHIPPED.links.spheres_for(ROBOT)
EE_ONLY = replace(SHIPPED, links=None)
TOL = 1e-6  # m: PyBullet reports link frames in single precision
# Joint targets (arm) with the end effector above its own barrier but the arm's body below
# the table, found by search: link 6 (and 5) with the end effector 22 cm up; a finger (and the
# hand, links 6 and 7) with the end effector 3 cm up and the hand tilted.
BELOW = {
    "panda_link6": [0.478, 1.176, -0.132, -2.221, -0.693, 0.002, 0.702],
    "panda_leftfinger": [-0.773, 0.849, -0.001, -2.355, 0.635, 1.492, -1.419],
}


class Bullet:
    """The Panda on a private PyBullet client: link frames and collision meshes in the world."""

    def __init__(self) -> None:
        self.client = p.connect(p.DIRECT)
        self.body = p.loadURDF(str(ROBOT.urdf_path), useFixedBase=True, physicsClientId=self.client)
        count = p.getNumJoints(self.body, physicsClientId=self.client)
        infos = [p.getJointInfo(self.body, i, physicsClientId=self.client) for i in range(count)]
        self.links = {info[12].decode(): info[0] for info in infos}

    def pose(self, command: np.ndarray) -> None:
        """Arm joints and the gripper width of a filter command (each finger half of it)."""
        for index, value in zip(ROBOT.arm_indices, command[:7], strict=True):
            p.resetJointState(self.body, index, float(value), physicsClientId=self.client)
        for index in ROBOT.finger_indices:
            p.resetJointState(self.body, index, float(command[7]) / 2, physicsClientId=self.client)

    def frame(self, link: str, inertial: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation of a link's URDF frame (or its inertial frame)."""
        state = p.getLinkState(
            self.body, self.links[link], computeForwardKinematics=True, physicsClientId=self.client
        )
        position, orientation = (state[0], state[1]) if inertial else (state[4], state[5])
        rotation = np.array(p.getMatrixFromQuaternion(orientation)).reshape(3, 3)
        return np.array(position), rotation

    def sphere_bottoms(self) -> dict[str, float]:
        """Lowest point (z) of each link's covering spheres."""
        lowest: dict[str, float] = {}
        for sphere in SPHERES:
            position, rotation = self.frame(sphere.link)
            bottom = (position + rotation @ sphere.center)[2] - sphere.radius
            lowest[sphere.link] = min(lowest.get(sphere.link, np.inf), bottom)
        return lowest

    def mesh(self, link: str) -> np.ndarray:
        """The link's collision mesh vertices in the world (PyBullet gives them in the link's
        inertial frame)."""
        vertices = np.array(
            p.getMeshData(self.body, self.links[link], physicsClientId=self.client)[1]
        )
        position, rotation = self.frame(link, inertial=True)
        return vertices @ rotation.T + position

    def close(self) -> None:
        p.disconnect(self.client)


@pytest.fixture(scope="module")
def bullet():
    world = Bullet()
    yield world
    world.close()


def drive(config: SafetyConfig, target: np.ndarray, ticks: int, bullet: Bullet | None = None):
    """Hold `target` for `ticks` from home; the commands, reasons, and (with `bullet`) the
    lowest sphere bottom per link seen."""
    safety = config.build_filter(NAMES, DT)
    commands, reasons, lowest = [], set(), {}
    for k in range(ticks):
        safety.feed(k * DT)
        result = safety.step(target, HOME, k * DT)
        commands.append(result.command)
        reasons.update(result.reasons)
        if bullet is not None:
            bullet.pose(result.command)
            for link, bottom in bullet.sphere_bottoms().items():
                lowest[link] = min(lowest.get(link, np.inf), bottom)
    return np.array(commands), reasons, lowest


def test_the_spheres_contain_every_links_collision_mesh(bullet):
    """Vertices, and points inside their hull (random convex combinations), of PyBullet's own
    meshes, in a pose away from home and with the fingers half open."""
    rng = np.random.default_rng(0)
    bullet.pose(np.array([*(HOME[:7] + rng.uniform(-0.5, 0.5, 7)), 0.04]))
    assert {s.link for s in SPHERES} == set(collision_links(ROBOT))
    for link in collision_links(ROBOT):
        vertices = bullet.mesh(link)
        weights = rng.dirichlet(np.full(len(vertices), 0.05), size=2000)
        points = np.concatenate([vertices, weights @ vertices])
        position, rotation = bullet.frame(link)
        inside = np.full(len(points), False)
        for sphere in (s for s in SPHERES if s.link == link):
            center = position + rotation @ sphere.center
            inside |= np.linalg.norm(points - center, axis=1) <= sphere.radius + TOL
        assert inside.all(), link


@pytest.mark.parametrize("link", sorted(BELOW))
def test_a_link_driven_below_the_table_is_kept_above_it(bullet, link):
    target = np.array([*BELOW[link], 0.08])  # opening the gripper all the way on the way
    # Without the keep-out the command goes through: the end effector stays above the table
    # (its own barrier never acts) while the link's mesh goes under it.
    commands, reasons, _ = drive(EE_ONLY, target, 300)
    np.testing.assert_allclose(commands[-1][:7], target[:7], atol=1e-6)
    assert not any(r.startswith(("obstacle:", "workspace:")) for r in reasons)
    bullet.pose(commands[-1])
    assert bullet.mesh(link)[:, 2].min() < -0.015
    # With it, no sphere of any link goes below table + margin on the way, at whatever width
    # the fingers have, and neither does any mesh.
    commands, reasons, lowest = drive(SHIPPED, target, 300, bullet)
    assert f"link_obstacle:{link}:table" in reasons
    assert min(lowest.values()) >= MARGIN - TOL, lowest
    assert commands[-1][7] == pytest.approx(0.08)
    for command in commands[::25]:
        bullet.pose(command)
        assert min(bullet.mesh(name)[:, 2].min() for name in lowest) >= MARGIN - TOL


def test_a_push_well_above_the_table_is_left_alone():
    """Lowering the hand to 25 cm above the table and sweeping it sideways, as a push would:
    identical commands with the keep-out and without it, and no link reason."""
    kinematics = Kinematics(ROBOT)
    outputs = []
    for config in (SHIPPED, EE_ONLY):
        safety = config.build_filter(NAMES, DT)
        q, path, reasons = HOME.copy(), [], set()
        for k in range(120):
            height = kinematics.ee_position(q[:7])[2]
            direction = np.array([0.002, -0.003, -0.002 if height > 0.25 else 0.0])
            step = np.linalg.pinv(kinematics.jacobian(q[:7])) @ direction
            safety.feed(k * DT)
            result = safety.step(q + np.append(step, 0.0), HOME, k * DT)
            q = result.command
            path.append(q)
            reasons.update(result.reasons)
        assert not any(r.startswith("link_obstacle:") for r in reasons)
        outputs.append(np.array(path))
    assert kinematics.ee_position(outputs[0][-1][:7])[2] < 0.26  # it did come down
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_point_kinematics_match_pybullet_and_differentiate(bullet):
    points, _ = tracked(ROBOT, SPHERES)
    kinematics = Kinematics(ROBOT, points)
    rng = np.random.default_rng(1)
    for _ in range(3):
        q = rng.uniform(ROBOT.arm_lower, ROBOT.arm_upper)
        positions, jacobians = kinematics.points_and_jacobians(q)
        assert positions.shape == (1 + len(points), 3)
        np.testing.assert_allclose(positions[0], kinematics.ee_position(q), atol=1e-12)
        np.testing.assert_allclose(jacobians[0], kinematics.jacobian(q), atol=1e-12)
        for point, position in zip(points, positions[1:], strict=True):
            bullet.pose(np.array([*q, 2 * point.opening]))
            origin, rotation = bullet.frame(point.link)
            np.testing.assert_allclose(position, origin + rotation @ point.offset, atol=TOL)
        eps = 1e-6
        numeric = np.stack(
            [
                (
                    kinematics.points_and_jacobians(q + d)[0]
                    - kinematics.points_and_jacobians(q - d)[0]
                )
                / (2 * eps)
                for d in np.eye(7) * eps
            ],
            axis=2,
        )
        np.testing.assert_allclose(jacobians, numeric, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(fractions=st.lists(st.floats(0, 1), min_size=7, max_size=7).map(np.array))
def test_lever_arms_bound_every_points_derivatives(fractions):
    """The curvature term of the proof, for link points as for the end effector."""
    points = (
        Point("panda_link3", (0.1, 0.05, -0.05)),
        Point("panda_rightfinger", (0, -0.01, 0.05), 0.04),
    )
    kinematics = Kinematics(ROBOT, points)
    arms = lever_arms(ROBOT, points)
    q = ROBOT.arm_lower + fractions * (ROBOT.arm_upper - ROBOT.arm_lower)
    jacobians = kinematics.points_and_jacobians(q)[1]
    columns = np.linalg.norm(jacobians, axis=1)
    assert np.all(columns <= arms)
    assert np.all(columns[1, 3:] == 0) and np.all(arms[1, 3:] == 0)  # link 3 rides on 3 joints
    eps = 1e-4
    for i in range(7):
        step = np.eye(7)[i] * eps
        ahead, behind = (
            kinematics.points_and_jacobians(q + step)[1],
            kinematics.points_and_jacobians(q - step)[1],
        )
        second = np.linalg.norm((ahead - behind) / (2 * eps), axis=1)  # (points, j)
        m = np.maximum(i, np.arange(7))
        assert np.all(second <= columns[:, m] + 1e-5)


targets = st.lists(st.floats(0, 1), min_size=8, max_size=8)


# The shipped cell, and one with a ball and a bin in reach and the table raised (bench/safety.py)
# where the fingers' stroke inflation and the box distances are in play too.
CLUTTERED = replace(SafetyConfig.from_dict(CBF_SCENE), links=SHIPPED.links)


@pytest.mark.parametrize("config", [SHIPPED, CLUTTERED], ids=["shipped", "cluttered"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(
    start=st.lists(st.floats(-0.6, 0.6), min_size=7, max_size=7),
    plan=st.lists(st.tuples(targets, st.integers(10, 60)), min_size=1, max_size=4),
)
def test_random_commands_never_take_a_link_into_an_obstacle(config, start, plan):
    limits = config.joint_limits()
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    safety = config.build_filter(NAMES, DT)
    barriers = safety.barriers

    def links(command: np.ndarray) -> np.ndarray:
        positions = barriers.kinematics.points_and_jacobians(command[:7])[0]
        return barriers.scene.evaluate(positions)[0][len(barriers.scene.end_effector()) :]

    first = np.clip(HOME + np.array([*start, 0.0]), lower, upper)
    assume(np.all(links(first) >= 0))
    tick, engaged = 0, 0
    for fractions, hold in plan:
        target = lower + np.array(fractions) * (upper - lower)
        for _ in range(hold):
            safety.feed(tick * DT)
            result = safety.step(target, first, tick * DT)
            # Each link sphere's centre stays its radius + margin out of every obstacle.
            assert links(result.command).min() >= -1e-9, result.reasons
            engaged += any(r.startswith("link_obstacle:") for r in result.reasons)
            tick += 1
    # Steer the search toward runs the keep-out has to work in.
    hypothesis.target(float(engaged), label="ticks the keep-out changed")
    hypothesis.event(f"keep-out engaged: {engaged > 0}")


@pytest.mark.parametrize(
    "links",
    [
        {"margin": -0.01},
        {"margin": "wide"},
        {"spheres": 0},
        {"spheres": 9},
        {"spheres": 2.5},
        {"radius": "big"},
        {"radius": 0.05},
        {"radius": {"panda_hand": -0.05}},
        {"radius": {"panda_link8": 0.05}},
        {"names": ["panda_link6", "panda_link6"]},
        {"names": ["panda_link0"]},
        {"names": ["panda_grasptarget"]},
        {"margins": 0.01},
        {"names": ["panda_hand"], "radius": {"panda_link6": 0.1}},
    ],
)
def test_bad_links_config_is_rejected_with_a_clear_error(links, tmp_path):
    with pytest.raises(ValueError, match="links"):
        SafetyConfig.from_dict({"links": links})
    path = tmp_path / "safety.yaml"
    path.write_text(yaml.safe_dump({"links": links}))
    with pytest.raises(ValueError, match=str(path)):
        SafetyConfig.from_yaml(path)


def test_links_config_defaults_and_overrides():
    assert SafetyConfig().links is None  # the code default: the end effector alone
    assert SHIPPED.links == LinksConfig(names=collision_links(ROBOT), spheres=3, margin=0.01)
    assert collision_links(ROBOT) == (
        *(f"panda_link{i}" for i in range(1, 8)),
        "panda_hand",
        "panda_leftfinger",
        "panda_rightfinger",
    )
    config = SafetyConfig.from_dict({"links": {"spheres": 2, "radius": {"panda_hand": 0.09}}})
    spheres = config.links.spheres_for(ROBOT)
    assert len(spheres) == 2 * len(collision_links(ROBOT))  # names: null = every link
    assert {s.radius for s in spheres if s.link == "panda_hand"} == {0.09}
    # The fingers are tracked at both ends of their stroke.
    points, bodies = tracked(ROBOT, spheres)
    assert len(points) == len(spheres) + sum(s.link.endswith("finger") for s in spheres)
