"""Per-tick cost of the composed safety filter on the Panda, for `robot-policy bench safety`.

The filter runs inside every control tick (100 Hz-1 kHz), so its budget is tens of microseconds
without Cartesian barriers and well under a millisecond with them. The arm chases a new random
joint target every half second, so the barriers keep becoming active: an idle scene would time
only the cheap path that skips the QP. Wall-clock percentiles are what a control loop feels;
the CPU-time ones (`*_cpu_us_*`, this thread's own CPU time) leave out the time the OS gave
to other processes, which dominates the wall p99 on a shared machine.

The whole-arm keep-out is timed against the same scene without it, both filters stepped in
lockstep on one target sequence (each from its own state), so a burst of machine noise falls
on both alike and the difference of their percentiles is the keep-out's cost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

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
_BARRIER_REASONS = ("workspace:", "obstacle:", "link_obstacle:", "barrier_brake")


def time_filters(
    configs: Mapping[str, SafetyConfig], iterations: int, seed: int = 0
) -> dict[str, float]:
    """`<name>_` latency percentiles (µs) of `SafetyFilter.step` under each config, stepped in
    lockstep, and how often the barrier stage (`_barrier_active_fraction`) and the link
    keep-out (`_link_active_fraction`) changed the command."""
    robot = next(iter(configs.values())).description
    names = [*robot.arm_joint_names, "gripper"]
    filters = {name: config.build_filter(names, DT) for name, config in configs.items()}
    limits = next(iter(configs.values())).joint_limits()
    lower, upper = np.array(limits.lower), np.array(limits.upper)
    rng = np.random.default_rng(seed)
    states = {name: np.array([*robot.home, upper[-1] / 2]) for name in configs}
    target = states[next(iter(configs))]
    timings = {name: np.empty((iterations, 2)) for name in configs}
    active = dict.fromkeys(configs, 0)
    links = dict.fromkeys(configs, 0)
    clock, cpu = time.perf_counter, time.thread_time
    for i in range(iterations):
        if i % RETARGET_TICKS == 0:
            target = rng.uniform(lower, upper)
        now = i * DT
        for name, safety in filters.items():
            safety.feed(now)
            start, start_cpu = clock(), cpu()
            result = safety.step(target, states[name], now)
            timings[name][i] = clock() - start, cpu() - start_cpu
            active[name] += any(r.startswith(_BARRIER_REASONS) for r in result.reasons)
            links[name] += any(r.startswith("link_obstacle:") for r in result.reasons)
            states[name] = result.command
    stats: dict[str, float] = {}
    for name in configs:
        wall, cpu_time = timings[name].T * 1e6
        stats |= {
            f"{name}_us_p50": float(np.percentile(wall, 50)),
            f"{name}_us_p99": float(np.percentile(wall, 99)),
            f"{name}_cpu_us_p50": float(np.percentile(cpu_time, 50)),
            f"{name}_cpu_us_p99": float(np.percentile(cpu_time, 99)),
            f"{name}_barrier_active_fraction": active[name] / iterations,
            f"{name}_link_active_fraction": links[name] / iterations,
        }
    return stats


def run(iterations: int = 20000, cbf_iterations: int = 5000) -> dict[str, float]:
    """`filter_*`: joint limits, watchdog and e-stop (no Cartesian barriers);
    `filter_default_*`: config/safety/panda.yaml (workspace box + table, whole-arm keep-out),
    `filter_default_ee_*` the same without the keep-out (end effector only);
    `filter_cbf_*`: the workspace box and three obstacles, end effector only, and
    `filter_cbf_links_*` with panda.yaml's keep-out added. `link_cost_*`: the keep-out's
    added CPU time per tick (p50, p99) in each pair."""
    shipped = SafetyConfig.for_robot()
    cbf = SafetyConfig.from_dict(CBF_SCENE)
    result = time_filters({"filter": SafetyConfig(workspace=None, obstacles=())}, iterations)
    result = {k: v for k, v in result.items() if "active" not in k}
    pairs = {
        "filter_default": shipped,
        "filter_default_ee": replace(shipped, links=None),
        "filter_cbf": cbf,
        "filter_cbf_links": replace(cbf, links=shipped.links),
    }
    result |= time_filters(pairs, cbf_iterations)
    for scene, without in (("default", "filter_default_ee"), ("cbf", "filter_cbf")):
        with_links = "filter_default" if scene == "default" else "filter_cbf_links"
        for p in ("p50", "p99"):
            key = f"link_cost_{scene}_cpu_us_{p}"
            result[key] = result[f"{with_links}_cpu_us_{p}"] - result[f"{without}_cpu_us_{p}"]
    return {**result, "iterations": iterations, "cbf_iterations": cbf_iterations}
