"""Per-tick cost of the safety filter on the Panda, for `robot-policy bench safety`.

The filter runs inside every control tick (100 Hz-1 kHz), so its latency budget is tens of
microseconds; this measures it with random in-range commands around a moving arm.
"""

from __future__ import annotations

import time

import numpy as np

from robot_policy.robots import panda
from robot_policy.safety.filter import SafetyFilter
from robot_policy.safety.limits import GRIPPER, SafetyLimits


def run(iterations: int = 20000, seed: int = 0) -> dict[str, float]:
    """Latency percentiles of `SafetyFilter.step` in microseconds (7 arm joints + gripper)."""
    robot = panda()
    limits = SafetyLimits.from_robot(robot)
    names = (*robot.arm_joint_names, GRIPPER)
    safety = SafetyFilter(limits, names, dt=0.01)
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    rng = np.random.default_rng(seed)
    commands = rng.uniform(lower, upper, size=(iterations, len(names)))
    state = (lower + upper) / 2
    timings = np.empty(iterations)
    clock = time.perf_counter
    for i in range(iterations):
        safety.feed(i * 0.01)
        start = clock()
        safety.step(commands[i], state, i * 0.01)
        timings[i] = clock() - start
    micros = timings * 1e6
    return {
        "filter_us_p50": float(np.percentile(micros, 50)),
        "filter_us_p99": float(np.percentile(micros, 99)),
        "iterations": float(iterations),
    }
