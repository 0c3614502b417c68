"""TwistIK: the commanded twist is the one the end effector makes, within the per-tick limits."""

import numpy as np
import pybullet as p
import pytest

from robot_policy.robots import load_robot
from robot_policy.teleop.device import TeleopCommand
from robot_policy.teleop.ik import TwistIK

ROBOT = load_robot()
DT = 0.1
HOME = np.array(ROBOT.home)


@pytest.fixture(scope="module")
def arm():
    """Forward kinematics of the grasp frame on a PyBullet client of the test's own."""
    client = p.connect(p.DIRECT)
    body = p.loadURDF(str(ROBOT.urdf_path), useFixedBase=True, physicsClientId=client)

    def pose(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for index, value in zip(ROBOT.arm_indices, q, strict=True):
            p.resetJointState(body, index, float(value), physicsClientId=client)
        state = p.getLinkState(
            body, ROBOT.ee_link_index, computeForwardKinematics=True, physicsClientId=client
        )
        return np.array(state[4]), np.reshape(p.getMatrixFromQuaternion(state[5]), (3, 3))

    yield pose
    p.disconnect(client)


@pytest.fixture
def ik():
    return TwistIK(ROBOT, DT)


def _rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """Axis * angle of a small rotation matrix."""
    skew = (rotation - rotation.T) / 2
    return np.array([skew[2, 1], skew[0, 2], skew[1, 0]])


@pytest.mark.parametrize(
    "linear, angular",
    [
        ([0.1, 0.0, 0.0], [0.0, 0.0, 0.0]),
        ([0.0, -0.08, 0.05], [0.0, 0.0, 0.0]),
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.5]),
        ([0.0, 0.0, 0.0], [0.3, -0.2, 0.0]),
        ([0.05, 0.05, -0.05], [0.0, 0.2, -0.3]),
    ],
)
def test_one_tick_realises_the_twist(ik, arm, linear, angular):
    position, rotation = arm(HOME)
    target = ik.step(TeleopCommand(linear, angular, enabled=True), HOME)
    moved_to, turned_to = arm(target[:7])
    # Over one 10 Hz tick the path is curved to second order; 5 % plus 0.5 mm / 5 mrad covers it
    # and the damping, and is far below any commanded motion here (5 mm / 20 mrad and up).
    np.testing.assert_allclose(moved_to - position, np.multiply(linear, DT), rtol=0.05, atol=5e-4)
    turned = _rotation_vector(turned_to @ rotation.T)
    np.testing.assert_allclose(turned, np.multiply(angular, DT), rtol=0.05, atol=5e-3)


def test_integrates_from_its_reference_and_holds_when_disabled(ik, arm):
    ik.reset(HOME)
    forward = TeleopCommand([0.1, 0, 0], enabled=True)
    for _ in range(5):
        # The measured arm lags 0.01 rad behind: the target must not be re-derived from it.
        target = ik.step(forward, ik.reference - 0.01)
    assert arm(target[:7])[0][0] - arm(HOME)[0][0] == pytest.approx(0.05, rel=0.05)
    held = ik.step(TeleopCommand([0.1, 0, 0], enabled=False), target[:7] - 0.005)
    np.testing.assert_array_equal(held[:7], target[:7])


@pytest.mark.parametrize("linear", [[5.0, 0, 0], [0, 0, -5.0], [3.0, 3.0, 0]])
def test_step_is_clamped_and_keeps_its_direction(arm, linear):
    ik = TwistIK(ROBOT, DT, max_joint_speed=0.5)
    target = ik.step(TeleopCommand(linear, enabled=True), HOME)
    assert np.abs(target[:7] - HOME).max() == pytest.approx(0.5 * DT)
    moved = arm(target[:7])[0] - arm(HOME)[0]
    # One factor for all joints keeps the Cartesian direction (cos > 0.999 measured); clipping
    # joint by joint would bend it (cos 0.76 for the downward command).
    cosine = moved @ linear / (np.linalg.norm(moved) * np.linalg.norm(linear))
    assert cosine > 0.998


def test_reference_never_runs_far_ahead_of_the_arm():
    ik = TwistIK(ROBOT, DT, max_lead=0.1)
    for _ in range(50):  # the arm is blocked: it never moves from home
        target = ik.step(TeleopCommand([0, 0, -0.2], enabled=True), HOME)
    assert np.abs(target[:7] - HOME).max() <= 0.1 + 1e-12


def test_output_is_the_action_vector(ik):
    target = ik.step(TeleopCommand(gripper=0.25), HOME)
    assert target.shape == (8,)
    np.testing.assert_array_equal(target[:7], HOME)
    assert target[7] == pytest.approx(0.25 * ROBOT.gripper_max_width)


def test_joint_limits_bound_the_targets():
    ik = TwistIK(ROBOT, DT, max_lead=10.0)
    ik.reset(HOME)
    for _ in range(200):
        target = ik.step(TeleopCommand(angular=[0, 0, 3.0], enabled=True), ik.reference)
    assert np.all(target[:7] >= ROBOT.arm_lower) and np.all(target[:7] <= ROBOT.arm_upper)
    at_limit = np.isclose(target[:7], ROBOT.arm_lower) | np.isclose(target[:7], ROBOT.arm_upper)
    assert at_limit.any()  # the command did drive a joint into its limit


def test_bad_input_is_rejected(ik):
    with pytest.raises(ValueError, match="joints"):
        ik.step(TeleopCommand(), HOME[:6])
    with pytest.raises(ValueError, match="joints"):
        ik.step(TeleopCommand(), np.full(7, np.nan))
    with pytest.raises(ValueError, match="linear"):
        TeleopCommand([np.nan, 0, 0])
    with pytest.raises(ValueError, match="gripper"):
        TeleopCommand(gripper=1.5)
    with pytest.raises(ValueError, match="damping"):
        TwistIK(ROBOT, DT, damping=0.0)
