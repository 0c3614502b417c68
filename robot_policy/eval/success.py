"""Success rates reported honestly: every evaluation, in-process or through ROS, reports its
count, rate and 95% Wilson interval the same way."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest at small n and at 0% or 100%, unlike the normal one."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def success_fields(successes: int, episodes: int) -> dict[str, float | int]:
    """`episodes`, `successes`, `success_rate`, `ci95_low`, `ci95_high` (the JSON contract)."""
    low, high = wilson_interval(successes, episodes)
    return {
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes,
        "ci95_low": low,
        "ci95_high": high,
    }
