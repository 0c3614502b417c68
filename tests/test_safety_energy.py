"""The energy tank: kinetic energy stays within the budget, braking refunds it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robot_policy.safety.energy import EnergyTank

INERTIA = np.array([0.5, 1.3, 0.8, 0.8, 0.05, 0.05, 0.01])
DT = 0.01
velocities = st.lists(st.floats(-3, 3), min_size=7, max_size=7).map(np.array)


@given(proposals=st.lists(velocities, min_size=1, max_size=30))
def test_kinetic_energy_never_exceeds_the_tank_plus_its_refill(proposals):
    tank = EnergyTank(INERTIA, capacity=1.0, refill_rate=0.5)
    last = np.zeros(7)
    for i, proposal in enumerate(proposals):
        anchor = last * 0.9  # a braking step: no more energy than the last velocity
        v, limited = tank.limit(anchor, proposal, DT)
        if not limited:
            assert v is proposal
        else:  # on the segment from the anchor to the proposal
            s = np.linalg.lstsq((proposal - anchor)[:, None], v - anchor, rcond=None)[0][0]
            np.testing.assert_allclose(v, anchor + s * (proposal - anchor), atol=1e-9)
            assert -1e-9 <= s <= 1 + 1e-9
        tank.commit(v)
        assert tank.kinetic(v) <= 1.0 + 0.5 * DT * (i + 1) + 1e-9
        assert 0.0 <= tank.energy <= 1.0
        last = v


def test_the_tank_pays_exactly_what_is_left_and_braking_refunds_it():
    tank = EnergyTank(np.ones(7), capacity=1.0, refill_rate=0.0)
    v, limited = tank.limit(np.zeros(7), np.full(7, 1.0), DT)  # K = 3.5 J > 1 J
    assert limited and tank.kinetic(v) == pytest.approx(1.0)
    np.testing.assert_allclose(v / np.linalg.norm(v), np.full(7, 7**-0.5))  # direction kept
    tank.commit(v)
    assert tank.energy == pytest.approx(0.0)
    tank.commit(np.zeros(7))
    assert tank.energy == pytest.approx(1.0)


def test_the_refill_lets_a_drained_arm_move_again():
    tank = EnergyTank(np.ones(7), capacity=1.0, refill_rate=2.0)
    tank.commit(tank.limit(np.zeros(7), np.full(7, 1.0), DT)[0])
    v, limited = tank.limit(np.zeros(7), np.full(7, 1.0), DT)
    assert limited and tank.kinetic(v) == pytest.approx(1.0 + 2.0 * DT)


@pytest.mark.parametrize(
    ("inertia", "capacity", "refill"), [([1.0, -1.0], 1.0, 0.0), ([1.0], 0.0, 0.0), ([1.0], 1, -1)]
)
def test_impossible_tanks_are_rejected(inertia, capacity, refill):
    with pytest.raises(ValueError):
        EnergyTank(inertia, capacity, refill)
