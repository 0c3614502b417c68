"""Jerk measures: exact on polynomials, and read at chunk switches."""

import math

import numpy as np
import pytest

from robot_policy.eval.jerk import JerkMeter, boundary_jerk, jerk_profile

DT = 0.1


def test_boundary_jerk_of_a_cubic():
    dt = 0.02
    t = np.arange(50) * dt
    x = np.stack([2.0 * t**3, -0.5 * t**3 + t], axis=1)
    assert boundary_jerk(x, dt) == pytest.approx(12.0)  # d³/dt³ of 2t³, exact for cubics


def test_boundary_jerk_sees_a_chunk_switch():
    smooth = np.zeros(20)
    jump = smooth.copy()
    jump[10:] = 1.0
    assert boundary_jerk(smooth, DT) == 0.0
    assert boundary_jerk(jump, DT) == pytest.approx(2.0 / DT**3)  # 1 - 3 from [-1, 3, -3, 1]


@pytest.mark.parametrize(("x", "dt"), [(np.zeros((3, 2)), DT), (np.zeros(10), 0.0)])
def test_jerk_rejects_short_streams_and_bad_dt(x, dt):
    with pytest.raises(ValueError):
        jerk_profile(x, dt)


def test_meter_reads_the_windows_around_each_switch():
    executed = np.zeros((12, 2))
    executed[6:, 1] = 1.0  # a chunk switch at step 6 jumps joint 1
    meter = JerkMeter(DT)
    meter.add_episode(list(executed), switches=[6])
    summary = meter.summary()
    assert summary["boundary_jerk_max"] == pytest.approx(2.0 / DT**3)
    assert summary["boundary_jerk_mean"] == summary["boundary_jerk_max"]
    # windows 3, 4, 5 see the jump (|1|, |-2|, |1| / dt³), the other six see nothing
    assert summary["jerk_mean"] == pytest.approx(4.0 / DT**3 / 9)


def test_meter_without_switches_or_episodes_reports_nan():
    meter = JerkMeter(DT)
    assert all(math.isnan(v) for v in meter.summary().values())
    meter.add_episode(list(np.zeros((8, 1))), switches=[])
    summary = meter.summary()
    assert summary["jerk_mean"] == 0.0 and math.isnan(summary["boundary_jerk_max"])
