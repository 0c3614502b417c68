"""Chunk scheduling in time: every `now` is explicit, so these run without a clock or sleeps."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.runtime.chunks import (
    ChunkScheduler,
    SchedulerConfig,
    TimedChunk,
    delay_steps,
)

DT = 0.1


def ramp(stamp: float, horizon: int = 10, offset: float = 0.0, dims: int = 2) -> TimedChunk:
    """Action k = offset + k in every dim: the index (or a chunk's identity) is readable back."""
    actions = offset + np.arange(horizon, dtype=float)[:, None] * np.ones(dims)
    return TimedChunk(stamp, DT, actions)


def receding(**kw) -> ChunkScheduler:
    return ChunkScheduler(SchedulerConfig(strategy="receding", **kw))


def ensemble(**kw) -> ChunkScheduler:
    return ChunkScheduler(SchedulerConfig(strategy="ensemble", **kw))


# --- TimedChunk ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "dt", "actions", "match"),
    [
        (0.0, 0.0, np.zeros((3, 2)), "dt"),
        (0.0, -0.1, np.zeros((3, 2)), "dt"),
        (0.0, math.nan, np.zeros((3, 2)), "dt"),
        (math.inf, 0.1, np.zeros((3, 2)), "stamp"),
        (0.0, 0.1, np.zeros(3), "shape"),
        (0.0, 0.1, np.zeros((0, 2)), "shape"),
        (0.0, 0.1, np.zeros((3, 0)), "shape"),
        (0.0, 0.1, np.array([[0.0, np.nan]]), "NaN"),
        (0.0, 0.1, np.array([[0.0, np.inf]]), "NaN"),
    ],
)
def test_invalid_chunks_rejected(stamp, dt, actions, match):
    with pytest.raises(ValueError, match=match):
        TimedChunk(stamp, dt, actions)


def test_chunk_is_a_read_only_copy():
    src = np.zeros((3, 2))
    chunk = TimedChunk(0.0, DT, src)
    src[0, 0] = 5.0
    assert chunk.actions[0, 0] == 0.0
    with pytest.raises(ValueError):
        chunk.actions[0, 0] = 1.0


def test_invalid_config_rejected():
    for bad in (
        {"strategy": "fifo"},
        {"n_action_steps": 0},
        {"ensemble_decay": -1.0},
        {"stale_margin": -0.01},
    ):
        with pytest.raises(ValueError):
            SchedulerConfig(**bad)


def test_mismatched_action_dim_rejected():
    sched = receding()
    sched.add(ramp(0.0, dims=2), now=0.0)
    with pytest.raises(ValueError, match="action dim"):
        sched.add(ramp(0.1, dims=3), now=0.1)


# --- receding horizon ------------------------------------------------------------------------


def test_receding_picks_actions_by_timestamp():
    sched = receding()
    sched.add(ramp(1.0), now=1.0)
    for k in range(10):
        assert sched.action(1.0 + k * DT)[0] == k
        assert sched.action(1.0 + (k + 0.5) * DT)[0] == k  # held until the next one is due


@given(delay=st.floats(0.0, 0.95, allow_nan=False), margin=st.sampled_from([0.0, 0.01]))
@settings(max_examples=60, deadline=None)
def test_late_chunk_starts_at_first_fresh_action(delay, margin):
    sched = receding(stale_margin=margin)
    chunk = ramp(2.0, horizon=12)
    sched.add(chunk, now=2.0 + delay)
    start = math.ceil((delay + margin) / DT - 1e-9)
    assert delay_steps(chunk, 2.0 + delay) == math.ceil(delay / DT - 1e-9)
    assert sched.stats.stale_actions_dropped == start
    assert sched.action(2.0 + start * DT)[0] == start
    if start > 0:  # the stale actions are gone, nothing older covers that time
        assert sched.action(2.0 + (start - 1) * DT) is None


def test_delay_steps_counts_whole_steps_late():
    chunk = ramp(1.0)
    assert delay_steps(chunk, 1.0) == 0
    assert delay_steps(chunk, 1.0 + 0.3) == 3  # exact multiple despite float round-off
    assert delay_steps(chunk, 1.0 + 0.31) == 4


def test_newer_chunk_overrides_from_its_first_fresh_action():
    sched = receding()
    sched.add(ramp(0.0, offset=0.0), now=0.0)
    # Computed from the observation at 0.4, arriving at 0.62: actions for 0.4..0.6 are stale.
    sched.add(ramp(0.4, offset=100.0), now=0.62)
    assert sched.action(0.65)[0] == 6  # old chunk still runs until the new one's first action
    assert sched.action(0.7)[0] == 103  # new chunk index 3 = time 0.7
    assert sched.action(1.2)[0] == 108
    assert sched.action(1.4) is None  # new chunk ends at 0.4 + 10*dt
    assert sched.stats.stale_actions_dropped == 3
    assert sched.stats.max_delay_steps == 3
    assert sched.stats.mean_delay_steps == pytest.approx(1.5)  # delays 0 and 3


def test_out_of_order_older_chunk_ignored():
    sched = receding()
    assert sched.add(ramp(0.5, offset=100.0), now=0.5)
    assert not sched.add(ramp(0.2, offset=0.0), now=0.6)
    assert not sched.add(ramp(0.5, offset=200.0), now=0.6)  # same stamp: a duplicate
    assert sched.action(0.7)[0] == 102
    assert sched.stats.chunks_received == 3
    assert sched.stats.chunks_out_of_order == 2
    assert sched.stats.last_ignored == (
        "out of order: stamp 0.500000 not after the last chunk's 0.500000"
    )


def test_fully_stale_chunk_dropped_and_says_why():
    sched = receding()
    assert not sched.add(ramp(0.0, horizon=4), now=0.5)
    assert sched.action(0.35) is None
    assert sched.stats.chunks_fully_stale == 1
    assert sched.stats.stale_actions_dropped == 4
    assert (
        sched.stats.last_ignored
        == "stale: ends 0.1000 s before now + stale_margin (5 steps of 0.1 s late)"
    )


def test_a_chunk_arriving_in_its_last_action_still_holds_it():
    # Issue 17.8: a one-action chunk stamped with its observation time is due before it can
    # arrive; it was always dropped as stale, silently.
    sched = receding()
    single = TimedChunk(1.0, 0.5, np.array([[7.0, 7.0]]))
    assert sched.add(single, now=1.03)
    assert sched.action(1.03)[0] == 7.0 and sched.action(1.49)[0] == 7.0
    assert sched.action(1.5) is None
    assert sched.stats.stale_actions_dropped == 0 and sched.stats.last_ignored == ""
    late = receding()
    assert late.add(ramp(0.0, horizon=4), now=0.35)  # only the last action still covers
    assert late.action(0.35)[0] == 3 and late.action(0.4) is None
    assert late.stats.stale_actions_dropped == 3


def test_none_when_nothing_covers_now():
    sched = receding()
    assert sched.action(0.0) is None
    sched.add(ramp(1.0, horizon=5), now=1.0)
    assert sched.action(0.99) is None
    assert sched.action(1.0 + 5 * DT) is None
    assert sched.action(1.0 + 4.9 * DT) is not None


def test_needs_chunk_after_n_action_steps():
    sched = receding(n_action_steps=4)
    assert sched.needs_chunk(0.0)
    sched.add(ramp(1.0), now=1.05)
    assert not sched.needs_chunk(1.1)
    assert not sched.needs_chunk(1.0 + 3.5 * DT)
    assert sched.needs_chunk(1.0 + 4 * DT)  # actions 0..3 are past, counted from the stamp
    sched.add(ramp(1.4), now=1.45)
    assert not sched.needs_chunk(1.5)


def test_needs_chunk_when_horizon_shorter_than_n_action_steps():
    sched = receding(n_action_steps=8)
    sched.add(ramp(0.0, horizon=3), now=0.0)
    assert not sched.needs_chunk(0.25)
    assert sched.needs_chunk(0.3)


# --- temporal ensembling ---------------------------------------------------------------------


def test_ensemble_is_acts_weighted_average_oldest_first():
    m = 0.5  # large enough that reversing the order would change the answer
    sched = ensemble(ensemble_decay=m)
    chunks = [ramp(0.0, offset=0.0), ramp(0.1, offset=100.0), ramp(0.2, offset=300.0)]
    for c in chunks:
        sched.add(c, now=c.stamp)
    now = 0.3
    values = np.array([3.0, 102.0, 301.0])  # each chunk's action for t = 0.3, oldest first
    w = np.exp(-m * np.arange(3))
    expected = (w * values).sum() / w.sum()
    np.testing.assert_allclose(sched.action(now), [expected, expected])
    assert expected < values.mean()  # the oldest chunk carries the largest weight


def test_ensemble_only_averages_chunks_covering_now():
    sched = ensemble(ensemble_decay=0.01)
    sched.add(ramp(0.0, horizon=3, offset=0.0), now=0.0)
    sched.add(ramp(0.1, horizon=10, offset=100.0), now=0.15)  # its action 0 is stale
    np.testing.assert_allclose(sched.action(0.15), [1.0, 1.0])  # only the old chunk is fresh
    w = np.exp(-0.01 * np.arange(2))
    np.testing.assert_allclose(sched.action(0.2), [(w @ [2.0, 101.0]) / w.sum()] * 2)
    np.testing.assert_allclose(sched.action(0.35), [102.0, 102.0])  # old chunk has ended
    assert sched.action(1.2) is None


# --- interpolation ---------------------------------------------------------------------------


@given(
    slope=st.floats(-5, 5, allow_nan=False),
    offset=st.floats(-5, 5, allow_nan=False),
    frac=st.floats(0.0, 8.99, allow_nan=False),
    strategy=st.sampled_from(["receding", "ensemble"]),
)
@settings(max_examples=60, deadline=None)
def test_interpolation_exact_for_linear_chunks(slope, offset, frac, strategy):
    stamp = 3.0
    k = np.arange(10, dtype=float)
    chunk = TimedChunk(stamp, DT, np.stack([offset + slope * k, -slope * k], axis=1))
    sched = ChunkScheduler(SchedulerConfig(strategy=strategy, interpolate=True))
    sched.add(chunk, now=stamp)
    np.testing.assert_allclose(
        sched.action(stamp + frac * DT), [offset + slope * frac, -slope * frac], atol=1e-9
    )


def test_interpolation_holds_the_last_action():
    sched = receding(interpolate=True)
    sched.add(ramp(0.0, horizon=3), now=0.0)
    np.testing.assert_allclose(sched.action(0.25), [2.0, 2.0])


def test_ensemble_interpolates_each_chunk_before_averaging():
    sched = ensemble(interpolate=True, ensemble_decay=0.0)
    sched.add(ramp(0.0, offset=0.0), now=0.0)
    sched.add(ramp(0.1, offset=10.0), now=0.1)
    # t = 0.25: chunk A at index 2.5 -> 2.5, chunk B at index 1.5 -> 11.5; equal weights.
    np.testing.assert_allclose(sched.action(0.25), [7.0, 7.0])


# --- real-time chunking: the plan and the delay estimate --------------------------------------


def test_plan_is_what_action_will_return_up_to_the_first_gap():
    sched = receding()
    sched.add(ramp(0.0, horizon=5), now=0.0)
    sched.add(ramp(0.3, horizon=4, offset=10.0), now=0.3)
    plan = sched.plan(0.1, DT, 10)
    np.testing.assert_allclose(plan[:, 0], [1.0, 2.0, 10.0, 11.0, 12.0, 13.0])  # ends at 0.7
    assert sched.plan(5.0, DT, 3).shape == (0, 2)
    assert receding().plan(0.0, DT, 3).shape == (0, 0)


@pytest.mark.parametrize(("delays", "expected"), [([], 0), ([2], 2), ([1] * 9 + [3], 2)])
def test_expected_delay_is_a_high_quantile_of_recent_delays(delays, expected):
    sched = receding(delay_quantile=0.9, delay_window=10)
    for i, d in enumerate(delays):
        sched.add(ramp(float(i)), now=float(i) + d * DT)
    assert sched.expected_delay_steps() == expected


def test_expected_delay_forgets_outside_its_window():
    sched = receding(delay_window=2)
    for i, d in enumerate([5, 1, 1]):
        sched.add(ramp(float(i)), now=float(i) + d * DT)
    assert sched.expected_delay_steps() == 1
    assert sched.stats.max_delay_steps == 5  # the report still sees it


@pytest.mark.parametrize(
    ("kw", "match"), [({"delay_window": 0}, "delay_window"), ({"delay_quantile": 1.5}, "quantile")]
)
def test_invalid_delay_settings_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        SchedulerConfig(**kw)
