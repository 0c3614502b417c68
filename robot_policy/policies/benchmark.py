"""`robot-policy bench inference`: chunk latency of the shipped policy and of a DP-size denoiser.

Latency is what the control loop feels, so the figures are for batch 1, warm (after a few
untimed calls), with the torch thread count fixed and reported: on 2 shared cores the thread
count changes the answer more than anything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.unet1d import ConditionalUnet1D

# Diffusion Policy's reference ConditionalUnet1D (REFERENCES.md).
DP_DOWN_DIMS = (256, 512, 1024)
DP_KERNEL = 5
DP_STEP_EMBED = 256
DP_HORIZON = 16


def _time_ms(fn: Callable[[], object], warmup: int, iters: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return np.asarray(samples)


def run(
    policy: ChunkPolicy, threads: int = 1, iters: int = 50, warmup: int = 5
) -> dict[str, float]:
    torch.set_num_threads(threads)
    policy.eval()
    obs = policy.blank_observation()
    chunk = _time_ms(lambda: policy.predict_chunk(obs), warmup, iters)

    cfg = policy.config
    with torch.inference_mode():
        global_cond = policy.encode(obs)
    dp_net = ConditionalUnet1D(
        cfg.action_dim, global_cond.shape[-1], DP_DOWN_DIMS, DP_KERNEL, DP_STEP_EMBED
    ).eval()
    sample = torch.randn(1, DP_HORIZON, cfg.action_dim)
    level = torch.tensor([10.0])
    with torch.inference_mode():
        step = _time_ms(lambda: dp_net(sample, level, global_cond), warmup, max(10, iters // 2))
    return {
        "threads": threads,
        "shipped_policy": cfg.type,
        "shipped_inference_steps": cfg.num_inference_steps,
        "shipped_params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
        "shipped_chunk_ms_p50": float(np.percentile(chunk, 50)),
        "shipped_chunk_ms_p99": float(np.percentile(chunk, 99)),
        "dp_size_params_m": sum(p.numel() for p in dp_net.parameters()) / 1e6,
        "dp_size_step_ms_p50": float(np.percentile(step, 50)),
    }
