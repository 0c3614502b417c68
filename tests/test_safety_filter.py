"""Property tests: whatever the policy sends, the filter's output stream stays within limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.robots import load_robot
from robot_policy.safety import GRIPPER, SafetyFilter, SafetyLimits

ROBOT = load_robot()
NAMES = (*ROBOT.arm_joint_names, GRIPPER)
LIMITS = SafetyLimits.from_robot(ROBOT)
LOWER, UPPER = np.array(LIMITS.lower), np.array(LIMITS.upper)
VMAX, AMAX, JMAX = (np.array(x) for x in (LIMITS.velocity, LIMITS.acceleration, LIMITS.jerk))
N = len(NAMES)
TOL = 1e-6

fractions = st.lists(st.floats(0, 1), min_size=N, max_size=N).map(np.array)
states = fractions.map(lambda f: LOWER + f * (UPPER - LOWER))
wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e9, -1e9, 0.0]),
    st.floats(-4, 4),
)
in_range = fractions.map(lambda f: LOWER - 0.2 + f * (UPPER - LOWER + 0.4))
commands = st.one_of(
    in_range,
    in_range.map(list),
    st.lists(wild, min_size=N, max_size=N).map(np.array),
    st.lists(wild, min_size=0, max_size=N + 2),
    in_range.flatmap(
        lambda q: st.permutations(list(zip(NAMES, q.tolist(), strict=True))).map(dict)
    ),  # shuffled names: must be read by name
    st.dictionaries(st.sampled_from([*NAMES, "foo"]), wild, max_size=N + 1),
    st.sampled_from([None, "panda", object()]),
)
ticks = st.lists(st.tuples(commands, st.booleans(), st.sampled_from(["", "", "", "stop", "reset"])))


def derivatives(outputs: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity, acceleration and jerk of a position stream that starts at rest."""
    v = np.diff(outputs, axis=0, prepend=outputs[:1]) / dt
    a = np.diff(v, axis=0, prepend=np.zeros((1, N))) / dt
    j = np.diff(a, axis=0, prepend=np.zeros((1, N))) / dt
    return v, a, j


@settings(max_examples=300, deadline=None)
@given(state=states, sequence=ticks.map(lambda t: t[:40]), dt=st.sampled_from([0.01, 0.001]))
def test_output_stream_respects_every_limit(state, sequence, dt):
    safety = SafetyFilter(LIMITS, NAMES, dt=dt)
    outputs = [state]
    for k, (command, fed, event) in enumerate(sequence):
        now = k * dt
        if fed:
            safety.feed(now)
        if event == "stop":
            safety.engage_e_stop("test")
        elif event == "reset":
            safety.reset()
        result = safety.step(command, state, now)
        assert result.command.shape == (N,) and result.command.dtype == np.float64
        assert np.isfinite(result.command).all() and np.isfinite(result.scale)
        outputs.append(result.command)
    q = np.array(outputs)
    assert (q >= LOWER - TOL).all() and (q <= UPPER + TOL).all()
    v, a, j = derivatives(q, dt)
    assert (np.abs(v) <= VMAX * (1 + TOL)).all()
    assert (np.abs(a) <= AMAX * (1 + TOL) + TOL).all()
    if dt == 0.01:  # jerk is guaranteed only where jerk*dt >= 2*acceleration (see filter.py)
        assert (np.abs(j) <= JMAX * (1 + TOL) + TOL).all()


@settings(max_examples=100, deadline=None)
@given(
    start=fractions.map(lambda f: LOWER + 0.5 + f * (UPPER - LOWER - 1.0)),
    direction=st.lists(st.floats(-1, 1), min_size=N, max_size=N).map(np.array),
    size=st.floats(0, 0.5),
)
def test_a_command_that_is_already_safe_passes_unchanged(start, direction, size):
    dt = 0.01
    start[-1] = LIMITS.gripper_width_range[1] / 2
    # A first step from rest is within every rate limit if its acceleration is.
    step = size * direction * np.minimum(AMAX, JMAX * dt) * dt * dt
    safety = SafetyFilter(LIMITS, NAMES, dt=dt)
    result = safety.step(start + step, start, 0.0)
    assert result.reasons == () and not result.held and result.scale == 1.0
    np.testing.assert_array_equal(result.command, start + step)


@settings(max_examples=50, deadline=None)
@given(state=states, commands=st.lists(in_range, min_size=1, max_size=30))
def test_e_stop_latches_until_reset_and_resumes_without_a_jump(state, commands):
    dt = 0.01
    safety = SafetyFilter(LIMITS, NAMES, dt=dt)
    safety.engage_e_stop("operator")
    for k, command in enumerate(commands):
        safety.feed(k * dt)
        result = safety.step(command, state, k * dt)
        assert result.held and "e_stop" in result.reasons
        np.testing.assert_array_equal(result.command, state)  # from rest, a stop is a hold
    safety.reset()
    k = len(commands)
    safety.feed(k * dt)
    result = safety.step(UPPER, state, k * dt)
    assert not result.held
    assert (np.abs(result.command - state) <= AMAX * dt * dt * (1 + TOL)).all()


@settings(max_examples=50, deadline=None)
@given(
    state=fractions.map(lambda f: LOWER + 1.0 + f * (UPPER - LOWER - 2.0)).filter(
        lambda q: (UPPER[:-1] - LOWER[:-1] > 2.0).all()
    )
)
def test_watchdog_holds_then_stops_within_the_deceleration_bound(state):
    dt = 0.01
    state[-1] = LIMITS.gripper_width_range[1] / 2
    safety = SafetyFilter(LIMITS, NAMES, dt=dt)
    velocity = np.where(np.arange(N) % 2, 1.0, -1.0) * VMAX * 0.5
    outputs, reasons = [state], []
    for k in range(120):
        if k < 50:
            safety.feed(k * dt)  # fed for 0.5 s while commanding a steady motion
        result = safety.step(state + velocity * dt * (k + 1), state, k * dt)
        outputs.append(result.command)
        reasons.append(result.reasons)
    assert "watchdog_hold" in reasons[62] and "watchdog_stop" in reasons[101]
    q = np.array(outputs)
    v, a, _ = derivatives(q, dt)
    assert (np.abs(a) <= AMAX * (1 + TOL) + TOL).all()
    # Braking at the acceleration limit from at most VMAX takes VMAX / AMAX seconds.
    stop_tick = 101 + int(np.ceil((VMAX / AMAX).max() / dt)) + 1
    np.testing.assert_allclose(v[stop_tick + 1 :], 0.0, atol=1e-9)


@pytest.mark.parametrize("dt", [0.01, 0.001])
def test_feed_after_a_stop_resumes_smoothly(dt):
    state = (LOWER + UPPER) / 2
    safety = SafetyFilter(LIMITS, NAMES, dt=dt)
    safety.step(state, state, 0.0)
    held = safety.step(UPPER, state, 1.0)
    assert held.reasons == ("watchdog_stop",)
    safety.feed(1.0 + dt)
    resumed = safety.step(UPPER, state, 1.0 + dt)
    assert not resumed.held
    assert (np.abs(resumed.command - held.command) <= AMAX * dt * dt * (1 + TOL)).all()
