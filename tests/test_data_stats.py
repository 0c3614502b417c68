"""Combining per-episode stats is exact: it equals the stats of all frames at once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_policy.data import stats


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    dim=st.integers(1, 4),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_combined_numeric_stats_equal_numpy_over_everything(sizes, dim, scale, seed):
    rng = np.random.default_rng(seed)
    parts = [(rng.normal(size=(n, dim)) * scale + rng.normal() * scale) for n in sizes]
    combined = stats.combine([stats.numeric_stats(p) for p in parts])
    everything = np.concatenate(parts)
    np.testing.assert_allclose(combined["mean"], everything.mean(0), rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(combined["std"], everything.std(0), rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_array_equal(combined["min"], everything.min(0))
    np.testing.assert_array_equal(combined["max"], everything.max(0))
    assert combined["count"].tolist() == [sum(sizes)]


def test_image_stats_are_per_channel_on_unit_scale():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)
    acc = stats.ImageStatsAccumulator()
    for f in frames[:2]:
        acc.add(f)
    other = stats.ImageStatsAccumulator()
    for f in frames[2:]:
        other.add(f)
    combined = stats.combine([acc.result(), other.result()])
    pixels = frames.reshape(-1, 3) / 255.0
    assert combined["mean"].shape == (3, 1, 1) and combined["count"].tolist() == [5]
    np.testing.assert_allclose(combined["mean"].ravel(), pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(combined["std"].ravel(), pixels.std(0), rtol=1e-9)
    np.testing.assert_allclose(combined["max"].ravel(), pixels.max(0))


def test_json_round_trip_keeps_values():
    original = {"a": stats.numeric_stats(np.arange(12.0).reshape(4, 3))}
    back = stats.from_json(stats.to_json(original))
    for name, value in original["a"].items():
        np.testing.assert_array_equal(back["a"][name], value)
