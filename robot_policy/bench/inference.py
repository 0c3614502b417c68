"""`robot-policy bench inference`: chunk latency of the shipped policy and of a DP-size denoiser.

Latency is what the control loop feels, so the figures are for batch 1, warm (after a few
untimed calls), with the torch thread count fixed and reported: on 2 shared cores the thread
count changes the answer more than anything else. Every optimized figure has its eager twin,
timed in the same process with the same threads, interleaved call by call so that a noisy
neighbour slows both alike, and the largest output difference against eager for the same noise.
The `_cpu_` figures are the calling thread's CPU time: on a shared machine, our own work.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from robot_policy.bench.hog import cpu_hog
from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.inference import InferenceSettings, configure
from robot_policy.policies.inference_unet1d import InferenceUnet1D
from robot_policy.policies.unet1d import ConditionalUnet1D

# Diffusion Policy's reference ConditionalUnet1D (REFERENCES.md).
DP_DOWN_DIMS = (256, 512, 1024)
DP_KERNEL = 5
DP_STEP_EMBED = 256
DP_HORIZON = 16
# The levels a 10-step flow sampler visits (t * 100): the DP-size step cycles through them.
DP_LEVELS = tuple(100.0 - 10.0 * i for i in range(10))


def _time_ms(
    fns: list[Callable[[], object]], warmup: int, iters: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-call (wall, calling-thread CPU) milliseconds of each function, calls interleaved so
    they share the conditions. With one torch thread the CPU time is the latency the call
    would have on a core of its own: on a shared machine, the part that is our own work."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, out in zip(fns, samples, strict=True):
            wall, cpu = time.perf_counter(), time.thread_time()
            fn()
            out.append(((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000))
    return [(np.asarray(s)[:, 0], np.asarray(s)[:, 1]) for s in samples]


def _top_ops(fn: Callable[[], object], calls: int = 3, top: int = 4) -> dict[str, float]:
    """Where the time goes: the heaviest operators' shares of self CPU time (torch.profiler)."""
    fn()
    with torch.profiler.profile() as prof:
        for _ in range(calls):
            fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return {e.key: round(e.self_cpu_time_total / total, 3) for e in events[:top]}


def _chunk_figures(
    eager: ChunkPolicy, fast: ChunkPolicy, warmup: int, iters: int
) -> dict[str, object]:
    obs = eager.blank_observation()
    noise = torch.randn(1, eager.config.horizon, eager.config.action_dim)
    diff = (fast.predict_chunk(obs, noise) - eager.predict_chunk(obs, noise)).abs().max()
    (eager_ms, _), (fast_ms, fast_cpu_ms) = _time_ms(
        [lambda: eager.predict_chunk(obs), lambda: fast.predict_chunk(obs)], warmup, iters
    )
    return {
        "shipped_chunk_ms_p50": float(np.percentile(fast_ms, 50)),
        "shipped_chunk_ms_p99": float(np.percentile(fast_ms, 99)),
        "shipped_chunk_cpu_ms_p50": float(np.percentile(fast_cpu_ms, 50)),
        "shipped_chunk_ms_p50_eager": float(np.percentile(eager_ms, 50)),
        "shipped_chunk_ms_p99_eager": float(np.percentile(eager_ms, 99)),
        "shipped_chunk_max_abs_diff": float(diff),
        "shipped_chunk_top_ops": _top_ops(lambda: fast.predict_chunk(obs)),
    }


def _dp_step_figures(
    action_dim: int, global_cond: torch.Tensor, precision: str, warmup: int, iters: int
) -> dict[str, object]:
    eager = ConditionalUnet1D(
        action_dim, global_cond.shape[-1], DP_DOWN_DIMS, DP_KERNEL, DP_STEP_EMBED
    ).eval()
    fast = InferenceUnet1D(eager, precision)
    sample = torch.randn(1, DP_HORIZON, action_dim)
    levels = [torch.tensor([v]) for v in DP_LEVELS]

    def steps(net: torch.nn.Module) -> Callable[[], torch.Tensor]:
        cycle = itertools.cycle(levels)
        return lambda: net(sample, next(cycle), global_cond)

    with torch.inference_mode():
        diff = max(
            float((fast(sample, lv, global_cond) - eager(sample, lv, global_cond)).abs().max())
            for lv in levels
        )
        timings = _time_ms([steps(eager), steps(fast)], warmup, iters)
        top_eager, top_fast = _top_ops(steps(eager)), _top_ops(steps(fast))
    (eager_ms, eager_cpu_ms), (fast_ms, fast_cpu_ms) = timings
    p50, p50_eager = float(np.percentile(fast_ms, 50)), float(np.percentile(eager_ms, 50))
    return {
        "dp_size_params_m": sum(p.numel() for p in eager.parameters()) / 1e6,
        "dp_size_step_ms_p50": p50,
        "dp_size_step_ms_p50_eager": p50_eager,
        "dp_size_step_ratio": p50 / p50_eager,
        "dp_size_step_cpu_ms_p50": float(np.percentile(fast_cpu_ms, 50)),
        "dp_size_step_cpu_ms_p50_eager": float(np.percentile(eager_cpu_ms, 50)),
        "dp_size_step_max_abs_diff": diff,
        "dp_size_step_top_ops_eager": top_eager,
        "dp_size_step_top_ops": top_fast,
    }


def run(
    policy: ChunkPolicy,
    settings: InferenceSettings | None = None,
    load: bool = False,
    iters: int = 50,
    warmup: int = 5,
) -> dict[str, object]:
    """Time `policy` eager and as `settings` prepare it (`policies.inference`, policy_node's
    defaults unless told otherwise; on a copy: `policy` itself is left as it is), and a DP-size
    denoiser both ways.

    `load`: time the prepared chunk again while another process keeps one core busy.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f"need iters >= 1, warmup >= 0; got {iters, warmup}")
    eager, fast = copy.deepcopy(policy).eval(), copy.deepcopy(policy)
    settings = configure(fast, replace(settings or InferenceSettings(), device="cpu"))
    if settings.inference_steps:
        eager.set_inference_steps(settings.inference_steps)
    if settings.precision == "eager":
        raise ValueError("bench inference times the fast path against eager: pick a precision")
    threads, precision = settings.threads, settings.precision
    torch.set_num_threads(threads)
    cfg = eager.config
    with torch.inference_mode():
        global_cond = eager.encode(eager.blank_observation())
    result: dict[str, object] = {
        "threads": threads,
        "precision": precision,
        "shipped_policy": cfg.type,
        "shipped_inference_steps": cfg.num_inference_steps,
        "shipped_params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
        **_chunk_figures(eager, fast, warmup, iters),
        **_dp_step_figures(cfg.action_dim, global_cond, precision, warmup, max(10, iters // 2)),
    }
    if load:
        obs = fast.blank_observation()
        with cpu_hog(1):
            ((loaded, _),) = _time_ms([lambda: fast.predict_chunk(obs)], warmup, iters)
        result["shipped_chunk_ms_p50_under_load"] = float(np.percentile(loaded, 50))
        result["shipped_chunk_ms_p99_under_load"] = float(np.percentile(loaded, 99))
    return result
