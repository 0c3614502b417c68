"""Zero-order-hold resampling of timestamped streams to a dataset's frame rate (ROS-free)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.data.resample import ZeroOrderHold


def feed(hold: ZeroOrderHold, key: str, stamps, value=lambda t: t) -> list:
    frames = []
    for t in stamps:
        hold.add(key, t, value(t))
        frames += hold.ready()
    return frames


def test_frames_hold_the_newest_sample_at_or_before_each_frame_time():
    hold = ZeroOrderHold(["fast", "slow"], fps=10)
    hold.add("fast", 0.95, -1.0)  # before the episode: never in a frame
    hold.add("slow", 0.90, -1.0)
    hold.begin(after=1.0)
    assert hold.origin is None and hold.ready() == []
    hold.add("fast", 1.00, 1.00)
    hold.add("slow", 1.02, 1.02)  # the last stream to publish since begin() sets the origin
    assert hold.origin == pytest.approx(1.02)
    frames = []
    for k in range(1, 40):
        hold.add("fast", 1.0 + 0.01 * k, 1.0 + 0.01 * k)
        if k % 4 == 0:
            hold.add("slow", 1.02 + 0.01 * k, 1.02 + 0.01 * k)
        frames += hold.ready()
    times = [f.time for f in frames]
    np.testing.assert_allclose(times, 1.02 + 0.1 * np.arange(len(frames)))
    for f in frames:  # held: the newest sample at or before the frame time, never a later one
        assert f.values["fast"] == pytest.approx(f.time, abs=1e-9)
        assert f.time - 0.04 - 1e-9 <= f.values["slow"] <= f.time + 1e-9
        assert f.ages["slow"] == pytest.approx(f.time - f.values["slow"])


def test_a_frame_is_emitted_only_once_every_stream_passed_its_time():
    hold = ZeroOrderHold(["a", "b"], fps=10)
    hold.begin(after=0.0)
    hold.add("a", 0.0, "a0")
    hold.add("b", 0.0, "b0")
    feed(hold, "a", [0.05, 0.1, 0.15, 0.2, 0.25])
    assert hold.ready() == []  # b could still send something stamped <= 0.0 + ...
    hold.add("b", 0.15, "b1")  # b passed 0.0 and 0.1: frames 0 and 1 are final
    frames = hold.ready()
    assert [f.index for f in frames] == [0, 1]
    assert [f.values["b"] for f in frames] == ["b0", "b0"]
    assert hold.ready() == []


def test_finish_ends_the_episode_at_the_stop_time_and_keeps_the_newest_samples():
    hold = ZeroOrderHold(["a"], fps=10)
    hold.begin(after=0.0)
    frames = feed(hold, "a", np.arange(0.0, 0.53, 0.01))
    frames += hold.finish(end=0.5)
    assert [f.index for f in frames] == list(range(6))  # 0.0 .. 0.5, none after the stop
    assert not hold.recording and hold.latest("a")[0] == pytest.approx(0.52)
    hold.begin(after=1.0)  # the next episode starts from new samples only
    assert hold.origin is None
    hold.add("a", 1.01, "new")
    assert hold.origin == pytest.approx(1.01)


def test_out_of_order_samples_are_dropped_and_counted():
    hold = ZeroOrderHold(["a"], fps=10)
    hold.begin(after=0.0)
    frames = feed(hold, "a", [0.0, 0.2])
    hold.add("a", 0.1, "late")
    assert hold.out_of_order == 1
    frames += hold.finish(0.2)
    assert [f.values["a"] for f in frames] == [0.0, 0.0, 0.2]


def test_abort_drops_the_episode_and_begin_twice_is_refused():
    hold = ZeroOrderHold(["a"], fps=10)
    hold.begin(after=0.0)
    with pytest.raises(RuntimeError, match="already"):
        hold.begin(after=0.0)
    feed(hold, "a", [0.0, 0.05])
    hold.abort()
    assert not hold.recording and hold.finish(1.0) == []


def test_bad_construction_is_refused():
    with pytest.raises(ValueError):
        ZeroOrderHold([], fps=10)
    with pytest.raises(ValueError):
        ZeroOrderHold(["a", "a"], fps=10)
    with pytest.raises(ValueError):
        ZeroOrderHold(["a"], fps=0)


@settings(max_examples=60, deadline=None)
@given(
    fps=st.sampled_from([5, 10, 30]),
    periods=st.lists(st.floats(0.002, 0.2), min_size=2, max_size=3),
    delays=st.lists(st.floats(0.0, 0.05), min_size=3, max_size=3),
)
def test_any_interleaving_gives_the_frames_of_the_offline_hold(fps, periods, delays):
    """Streams at any rates, each delivered with its own delay: the frames emitted live equal
    those computed offline from the complete streams (searchsorted on the frame grid)."""
    streams = {f"s{i}": np.arange(0.3 + 0.01 * i, 3.0, p) for i, p in enumerate(periods)}
    keys = list(streams)
    arrivals = sorted(
        (t + delays[i], k, t) for i, (k, ts) in enumerate(streams.items()) for t in ts
    )
    hold = ZeroOrderHold(keys, fps)
    hold.begin(after=0.3)
    frames = []
    for _, key, t in arrivals:
        hold.add(key, float(t), float(t))
        frames += hold.ready()
    end = min(ts[-1] for ts in streams.values())
    frames += hold.finish(end)
    origin = max(ts[0] for ts in streams.values())
    grid = origin + np.arange(int(np.floor((end - origin) * fps + 1e-9)) + 1) / fps
    assert [f.index for f in frames] == list(range(len(grid)))
    for key, ts in streams.items():
        expected = ts[np.searchsorted(ts, grid + 1e-9, side="right") - 1]
        np.testing.assert_allclose([f.values[key] for f in frames], expected)
