"""Per-tick cost of the Cartesian barrier filter on the Panda, FK + Jacobian + QP included.

The scene has the workspace box and three obstacles near the arm's reach (a ball, a box and the
table top), and the arm chases random joint targets so that the barriers keep becoming active:
an idle scene would time only the cheap path that skips the QP.
"""

from __future__ import annotations

import time

import numpy as np

from robot_policy.robots import panda
from robot_policy.safety.workspace import CartesianBarrierFilter

SCENE = {
    "workspace": {"low": [0.2, -0.4, 0.0], "high": [0.7, 0.4, 0.7]},
    "obstacles": [
        {"type": "sphere", "name": "ball", "center": [0.45, 0.2, 0.3], "radius": 0.08},
        {"type": "box", "name": "bin", "low": [0.45, -0.35, 0.0], "high": [0.65, -0.15, 0.2]},
        {"type": "plane", "name": "table", "point": [0.0, 0.0, 0.1], "normal": [0.0, 0.0, 1.0]},
    ],
}


def run(iterations: int = 2000, seed: int = 0, dt: float = 0.01) -> dict[str, float]:
    """Latency percentiles of `CartesianBarrierFilter.correct` in microseconds."""
    robot = panda()
    safety = CartesianBarrierFilter.from_config(SCENE, robot)
    rng = np.random.default_rng(seed)
    lower, upper = robot.arm_lower, robot.arm_upper
    q = np.array(robot.home)
    target = rng.uniform(lower, upper)
    timings = np.empty(iterations)
    active = 0
    clock = time.perf_counter
    try:
        for i in range(iterations):
            if i % 50 == 0:
                target = rng.uniform(lower, upper)
            start = clock()
            result = safety.correct(q, target, dt)
            timings[i] = clock() - start
            active += any(r.startswith(("workspace:", "obstacle:")) for r in result.reasons)
            q = result.command
    finally:
        safety.close()
    micros = timings * 1e6
    return {
        "filter_cbf_us_p50": float(np.percentile(micros, 50)),
        "filter_cbf_us_p99": float(np.percentile(micros, 99)),
        "barrier_active_fraction": active / iterations,
        "iterations": float(iterations),
    }
