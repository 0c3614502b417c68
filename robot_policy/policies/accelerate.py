"""Putting a loaded policy on its fast inference path, in place.

The sampling loops (flow, diffusion) stay as they are and keep calling `policy.denoiser`; only
the network behind that name changes, to an `InferenceUnet1D` computing the same function.
State-dict keys do not change, so an accelerated policy still saves and loads checkpoints.

Threads: run inference with 1 intra-op thread (`torch.set_num_threads(1)` in the thread that
runs it, as `InferenceWorker` does). On 2 cores shared with a control loop, a second OpenMP
thread made the shipped chunk some 30x slower whenever the other core was busy, because
OpenMP's threads wait for each other at every parallel region (BENCHMARKS.md, "Inference
latency").
"""

from __future__ import annotations

from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.inference_unet1d import PRECISIONS, InferenceUnet1D

__all__ = ["PRECISIONS", "accelerate"]


def accelerate(policy: ChunkPolicy, precision: str = "fp32") -> ChunkPolicy:
    """Swap `policy.denoiser` for its inference form and return the policy, in eval mode.

    `precision`: "fp32" (the plain network's outputs up to float rounding), "bf16" (bfloat16
    weights and activations) or "int8" (int8 weights, one scale per output channel, bfloat16
    activations). The last two stream a half and a quarter of fp32's weight bytes and differ
    from fp32 by about 1% of the output's scale per denoiser call (BENCHMARKS.md has the
    timings and closed-loop success). Accelerating again changes the precision. CPU only: a
    policy on another device is an error. The result has no gradients, so samplers that
    back-propagate through the denoiser (flow prefix guidance) need the plain network.
    """
    device = next(policy.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"the inference fast path runs on the CPU; this policy is on {device}")
    policy.denoiser = InferenceUnet1D(policy.denoiser, precision)
    return policy.eval()
