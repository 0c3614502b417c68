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


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=5),
    dim=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantiles_are_exact_per_episode_and_combine_as_lerobot_061_does(sizes, dim, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n, dim)) for n in sizes]
    per_part = [stats.numeric_stats(p) for p in parts]
    for part, got in zip(parts, per_part, strict=True):
        for name, q in zip(stats.QUANTILE_NAMES, stats.QUANTILES, strict=True):
            np.testing.assert_allclose(got[name], np.quantile(part, q / 100, axis=0))
    combined = stats.combine(per_part)
    counts = np.array(sizes, dtype=np.float64)[:, None]
    for name in stats.QUANTILE_NAMES:
        values = np.stack([p[name] for p in per_part])
        np.testing.assert_allclose(combined[name], (values * counts).sum(0) / counts.sum())


def test_image_quantiles_are_exact_over_every_pixel():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 5, 7, 3), dtype=np.uint8)
    frames[..., 0] //= 4  # channels with different distributions
    acc = stats.ImageStatsAccumulator()
    for f in frames:
        acc.add(f)
    result = acc.result()
    pixels = frames.reshape(-1, 3)
    for name, q in zip(stats.QUANTILE_NAMES, stats.QUANTILES, strict=True):
        want = np.quantile(pixels, q / 100, axis=0, method="inverted_cdf") / 255.0
        assert result[name].shape == (3, 1, 1)
        np.testing.assert_allclose(result[name].ravel(), want)
    np.testing.assert_allclose(result["min"].ravel(), pixels.min(0) / 255.0)


def test_stats_written_before_quantiles_combine_without_them():
    old = {k: v for k, v in stats.numeric_stats(np.arange(6.0)).items() if k[0] != "q"}
    new = stats.numeric_stats(np.arange(4.0))
    combined = stats.combine([old, new])
    assert set(combined) == set(stats.BASIC_STAT_NAMES)
    assert set(stats.combine([new, new])) == set(stats.STAT_NAMES)
