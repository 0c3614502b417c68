"""Per-tick cost of the composed safety filter on the Panda, for `robot-policy bench safety`.

The filter runs inside every control tick (100 Hz-1 kHz), so its budget is tens of microseconds
without Cartesian barriers and well under a millisecond with them. The arm chases a new random
joint target every half second, so the barriers keep becoming active: an idle scene would time
only the cheap path that skips the QP. Wall-clock percentiles are what a control loop feels;
the CPU-time ones (`*_cpu_us_*`, this thread's own CPU time) leave out the time the OS gave
to other processes, which dominates the wall p99 on a shared machine.
"""

from __future__ import annotations

import time

import numpy as np

from robot_policy.safety.config import SafetyConfig

DT = 0.01
RETARGET_TICKS = 50
# The workspace box and three obstacles near the arm's reach: a ball, a bin and the table top
# (raised to 0.1 m so the arm meets it often).
CBF_SCENE = {
    "workspace": {"low": [0.15, -0.4, 0.0], "high": [0.7, 0.4, 0.7]},
    "obstacles": [
        {"type": "sphere", "name": "ball", "center": [0.45, 0.2, 0.3], "radius": 0.08},
        {"type": "box", "name": "bin", "low": [0.45, -0.35, 0.0], "high": [0.65, -0.15, 0.2]},
        {"type": "plane", "name": "table", "point": [0.0, 0.0, 0.1], "normal": [0.0, 0.0, 1.0]},
    ],
}
_BARRIER_REASONS = ("workspace:", "obstacle:", "barrier_brake")


def time_filter(config: SafetyConfig, iterations: int, seed: int = 0) -> dict[str, float]:
    """Latency percentiles (µs) of `SafetyFilter.step` under `config`, and how often the
    barrier stage changed the command."""
    robot = config.description
    names = [*robot.arm_joint_names, "gripper"]
    safety = config.build_filter(names, DT)
    limits = config.joint_limits()
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    rng = np.random.default_rng(seed)
    state = np.array([*robot.home, upper[-1] / 2])
    target = state
    timings = np.empty((iterations, 2))
    active = 0
    clock, cpu = time.perf_counter, time.thread_time
    for i in range(iterations):
        if i % RETARGET_TICKS == 0:
            target = rng.uniform(lower, upper)
        now = i * DT
        safety.feed(now)
        start, start_cpu = clock(), cpu()
        result = safety.step(target, state, now)
        timings[i] = clock() - start, cpu() - start_cpu
        active += any(r.startswith(_BARRIER_REASONS) for r in result.reasons)
        state = result.command
    wall, cpu_time = timings.T * 1e6
    return {
        "us_p50": float(np.percentile(wall, 50)),
        "us_p99": float(np.percentile(wall, 99)),
        "cpu_us_p50": float(np.percentile(cpu_time, 50)),
        "cpu_us_p99": float(np.percentile(cpu_time, 99)),
        "barrier_active_fraction": active / iterations,
    }


def run(iterations: int = 20000, cbf_iterations: int = 5000) -> dict[str, float]:
    """`filter_us_*`: joint limits, watchdog and e-stop (no Cartesian barriers);
    `filter_default_us_*`: config/safety/panda.yaml's defaults (workspace box + table);
    `filter_cbf_us_*`: the workspace box and three obstacles."""
    scenes = {
        "filter": SafetyConfig(workspace=None, obstacles=()),
        "filter_default": SafetyConfig.for_robot(),
        "filter_cbf": SafetyConfig.from_dict(CBF_SCENE),
    }
    result: dict[str, float] = {}
    for name, config in scenes.items():
        stats = time_filter(config, iterations if name == "filter" else cbf_iterations)
        active = stats.pop("barrier_active_fraction")
        result |= {f"{name}_{key}": value for key, value in stats.items()}
    return {
        **result,
        "barrier_active_fraction": active,  # of the last scene, the three obstacles
        "iterations": iterations,
        "cbf_iterations": cbf_iterations,
    }
