"""JointTrajectoryController rules and playback, as the simulated arm applies them."""

import numpy as np
import pytest

from robot_policy.sim.trajectory import TrajectoryRejected, validate

JOINTS = ["a", "b"]
ORIGIN = np.zeros(2)


def check(names=JOINTS, stamp=0.0, times=(1.0, 2.0), positions=None, velocities=None, **kw):
    positions = positions if positions is not None else [[1.0, 2.0], [2.0, 4.0]][: len(times)]
    velocities = velocities if velocities is not None else [[]] * len(times)
    return validate(
        JOINTS, names, stamp, times, positions, velocities, now=10.0, origin=ORIGIN, **kw
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"names": []}, "empty joint names"),
        ({"names": ["a", "a"]}, "duplicate"),
        ({"names": ["a", "c"]}, "unknown joints"),
        ({"names": ["a"], "positions": [[1.0], [2.0]]}, "partial goal"),
        ({"times": ()}, "empty trajectory"),
        ({"times": (1.0, 1.0)}, "not strictly increasing"),
        ({"times": (2.0, 1.0)}, "not strictly increasing"),
        ({"positions": [[1.0], [2.0, 3.0]]}, "positions for 2 joints"),
        ({"velocities": [[0.0, 0.0], []]}, "some points but not all"),
        ({"positions": [[np.nan, 0.0], [1.0, 1.0]]}, "non-finite"),
        ({"velocities": [[0.0, 0.0], [0.5, 0.0]]}, "non-zero velocity at the trajectory's end"),
        ({"stamp": 5.0}, "ends in the past"),
    ],
)
def test_what_a_jtc_rejects_is_rejected(kwargs, reason):
    with pytest.raises(TrajectoryRejected, match=reason):
        check(**kwargs)


def test_accepted_variants():
    assert check(velocities=[[0.0, 0.0], [0.5, 0.0]], allow_nonzero_end_velocity=True)
    assert check(stamp=9.5).start == 9.5  # a future end with a past start: still playing
    reordered = check(names=["b", "a"], positions=[[2.0, 1.0], [4.0, 2.0]])
    np.testing.assert_allclose(reordered.positions, [[1.0, 2.0], [2.0, 4.0]])


def test_linear_playback_from_the_origin_then_hold():
    traj = check()  # starts on receipt: now = 10
    np.testing.assert_allclose(traj.sample(10.5), [0.5, 1.0])  # origin -> point 0 over 1 s
    np.testing.assert_allclose(traj.sample(11.5), [1.5, 3.0])
    np.testing.assert_allclose(traj.sample(20.0), [2.0, 4.0])  # held after the end


def test_cubic_playback_matches_endpoint_positions_and_velocities():
    velocities = [[1.0, 0.0], [0.0, 0.0]]
    traj = check(velocities=velocities)
    h = 1e-6
    for t, p, v in ((11.0, [1.0, 2.0], [1.0, 0.0]), (12.0, [2.0, 4.0], [0.0, 0.0])):
        np.testing.assert_allclose(traj.sample(t), p, atol=1e-9)
        slope = (traj.sample(t) - traj.sample(t - h)) / h
        np.testing.assert_allclose(slope, v, atol=1e-4)
