"""Making a new chunk agree with actions that are already committed (real-time chunking, RTC).

While a chunk is being computed the robot keeps executing the previous one, so the first d
actions of the new chunk (d = inference delay in steps) are decided before it exists; a chunk
that disagrees with them jumps at the switch. RTC treats the previous plan as a partial
observation of the new chunk: a soft mask trusts the committed actions fully and the rest of
the overlap less and less, and sampling is steered toward the masked target — by guidance of
the denoised estimate for flow policies (PiGDM), by inpainting for diffusion policies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


def soft_prefix_mask(horizon: int, prefix_len: int, committed: int) -> torch.Tensor:
    """RTC's mask (H,): 1 for the first `committed` actions, then c·(e^c − 1)/(e − 1) with c
    falling linearly to 0 where the previous plan ends (`prefix_len`), 0 beyond it.

    The decaying part keeps the new chunk near the old plan where that plan is still a
    reasonable guess, without forbidding it to change course later.
    """
    if not 0 <= committed <= prefix_len <= horizon:
        raise ValueError(
            f"need 0 <= committed ({committed}) <= prefix_len ({prefix_len}) <= horizon ({horizon})"
        )
    i = torch.arange(horizon, dtype=torch.float32)
    c = ((prefix_len - i) / (prefix_len - committed + 1)).clamp(0.0, 1.0)
    decay = c * torch.expm1(c) / math.expm1(1.0)
    return torch.where(i < committed, torch.ones_like(c), decay)


@dataclass(frozen=True)
class SampleRequest:
    """What a sampler is asked: start from `noise` (B, H, A), conditioned on `cond`, steered
    toward `guide` (real-time chunking) and/or warm-started from the normalized chunk `init`."""

    noise: torch.Tensor
    cond: torch.Tensor
    guide: PrefixGuide | None = None
    init: torch.Tensor | None = None


@dataclass(frozen=True)
class PrefixGuide:
    """Where the sampled chunk should land: `target` (B, H, A) in the policy's normalized
    action space, trusted per step by `weights` (H,) (zero where there is no target)."""

    target: torch.Tensor
    weights: torch.Tensor

    def blend(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Soft replacement: `known` where the mask is 1, `x` where it is 0."""
        w = self.weights[None, :, None]
        return w * known + (1 - w) * x


def pigdm_weight(t: float, max_weight: float) -> float:
    """Guidance weight at flow time t (1 = noise, 0 = data), clipped at `max_weight`.

    PiGDM's (1 − τ)/(τ·r²) with r² = (1 − τ)²/(τ² + (1 − τ)²) and τ = 1 − t; the expression
    is symmetric in t and τ, and diverges at both ends, hence the clip (RTC's beta).
    """
    if t <= 0.0 or t >= 1.0:
        return max_weight
    return min(max_weight, (t * t + (1 - t) ** 2) / (t * (1 - t)))


def guided_velocity(
    velocity: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    t: float,
    guide: PrefixGuide,
    max_weight: float,
) -> torch.Tensor:
    """Flow velocity at (x, t) corrected toward the guide (RTC, algorithm 1 in our convention).

    The denoised estimate is x̂₀ = x − t·v(x); the weighted error (target − x̂₀)·W is pulled
    back through x̂₀ with a vector-Jacobian product, which is the direction in x that reduces
    the error fastest. Velocity points from data to noise here, so the correction is
    subtracted.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x)
        if not v.requires_grad:
            raise RuntimeError(
                "flow prefix guidance back-propagates through the denoiser, and this one is "
                "not differentiable (an inference-only denoiser?): use the training-form network"
            )
        denoised = x - t * v
        error = (guide.target - denoised) * guide.weights[None, :, None]
        (pull,) = torch.autograd.grad(denoised, x, grad_outputs=error.detach())
    return v.detach() - pigdm_weight(t, max_weight) * pull
