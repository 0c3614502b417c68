"""Streaming Diffusion Policy: a rolling buffer of partially denoised actions.

Plain Diffusion Policy denoises a whole chunk from pure noise for every observation, although
only its first few actions run before the next one. Streaming keeps the chunk between
observations with noise rising along the horizon: the actions due next are clean, later ones
are noisier. Per observation a few denoiser calls make the next block clean, the executed block
is shifted out and fresh noise is appended. An action is denoised a little at each observation
it sees on its way to the front, so the calls per action fall from S/n (S steps, n actions
executed per observation) to about S/(H - now), and every step uses the newest observation.

Levels are counted in remaining DDIM steps r (0 = clean, S = pure noise); an action with r
left sits at the level DDIM would feed to its (S - r + 1)-th step, so with equal levels
everywhere this is exactly DDIM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from robot_policy.policies.chunk_policy import Batch
    from robot_policy.policies.diffusion import DiffusionPolicy

# Share of the streaming training patterns taken from a buffer's first observation (all noise
# coming down to the ramp) rather than from the steady state (ramp advanced by a few calls).
_INITIAL_SHARE = 0.2


@dataclass(frozen=True)
class StreamingSchedule:
    """Which noise level each buffer position holds, for a horizon H whose action `now` is
    the observation's own step, `block` actions executed per observation and `steps` DDIM
    steps over `train_timesteps` diffusion timesteps."""

    horizon: int
    now: int
    block: int
    steps: int
    train_timesteps: int

    def __post_init__(self) -> None:
        if not 1 <= self.block <= self.horizon - self.now:
            raise ValueError(
                f"block {self.block} must be in 1..horizon-now ({self.horizon - self.now})"
            )
        if not 1 <= self.steps <= self.train_timesteps:
            raise ValueError(f"steps {self.steps} must be in 1..{self.train_timesteps}")

    @property
    def calls_per_observation(self) -> int:
        """K: fresh noise enters at position H - block and must be clean once it reaches the
        executed block, (H - block - now) // block observations later; K calls per
        observation over those observations must cover the S steps."""
        waits = (self.horizon - self.block - self.now) // self.block
        return math.ceil(self.steps / (waits + 1))

    def _blocks_ahead(self, device: torch.device | None = None) -> torch.Tensor:
        """Observations before each position is executed (0 for the executed block and the
        past positions, which hold actions already sent)."""
        position = torch.arange(self.horizon, device=device)
        return (position - self.now).clamp_min(0) // self.block

    def target(self, device: torch.device | None = None) -> torch.Tensor:
        """Remaining steps per position once an observation's calls are done: a ramp of K
        per block, clean up to the end of the executed block."""
        k = self.calls_per_observation
        return (k * self._blocks_ahead(device)).clamp_max(self.steps)

    def timesteps(self, remaining: torch.Tensor) -> torch.Tensor:
        """The diffusion timestep DDIM's leading spacing feeds at `remaining` steps left
        (a clean action is labelled 0, like the level of DDIM's last step)."""
        spacing = self.train_timesteps // self.steps
        return (remaining - 1).clamp_min(0) * spacing

    def alphas(self, remaining: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
        """Signal fraction ᾱ of an action with `remaining` steps left (1 when clean)."""
        alpha = alphas_cumprod.to(remaining.device)[self.timesteps(remaining)]
        return torch.where(remaining == 0, torch.ones_like(alpha), alpha)

    def training_remaining(self, batch: int, device: torch.device) -> torch.Tensor:
        """Per-position remaining steps (batch, H) as a streaming buffer meets them: the
        steady state j < K calls into an observation (past positions clean), or a buffer's
        first observation c calls in (noise everywhere down to the ramp)."""
        k, s = self.calls_per_observation, self.steps
        ahead = self._blocks_ahead(device)
        calls = torch.randint(0, k, (batch, 1), device=device)
        steady = (k * (ahead + 1) - calls).clamp(0, s)
        past = torch.arange(self.horizon, device=device) < self.now
        steady = torch.where(past, 0, steady)
        calls_in = torch.randint(0, s, (batch, 1), device=device)
        first = torch.maximum(self.target(device), s - calls_in)
        use_first = torch.rand(batch, 1, device=device) < _INITIAL_SHARE
        return torch.where(use_first, first, steady)


class StreamingSampler:
    """One episode's buffer for a streaming diffusion policy.

    `next_chunk(obs, noise, shift)` per observation, with `shift` the action steps since the
    previous one; `calls` counts denoiser calls, the figure to compare with plain sampling.
    A late observation (shift > block) leaves the front less denoised than the ramp, and is
    simply given the extra calls it needs.
    """

    def __init__(self, policy: DiffusionPolicy) -> None:
        if not getattr(policy.config, "streaming", False):
            raise ValueError(
                "streaming needs a diffusion policy trained with streaming=true "
                "(robot-policy train --policy diffusion --set streaming=true)"
            )
        self.policy = policy
        self.schedule = policy.streaming_schedule
        self.calls = 0
        self._buffer: torch.Tensor | None = None  # normalized actions (B, H, A)
        self._remaining: torch.Tensor | None = None  # steps left per position (H,)

    def reset(self) -> None:
        """Forget the buffer (a new episode); `calls` keeps counting."""
        self._buffer = self._remaining = None

    @torch.no_grad()
    def next_chunk(self, obs: Batch, noise: torch.Tensor, shift: int) -> torch.Tensor:
        """The unnormalized chunk (B, H, A) for this observation.

        Clean positions come from the buffer; noisier ones from the last call's estimate of
        the clean chunk, so the chunk is usable to its end if the next one is late.
        `noise` (B, H, A): a fresh draw; its last `shift` rows become the appended actions.
        """
        policy, schedule = self.policy, self.schedule
        horizon = schedule.horizon
        if shift < 0:
            raise ValueError(f"shift must be >= 0, got {shift}")
        if self._buffer is None or shift >= horizon:
            buffer = noise.clone()
            remaining = torch.full((horizon,), schedule.steps, device=noise.device)
        else:
            assert self._remaining is not None
            kept = horizon - shift
            buffer = torch.cat([self._buffer[:, shift:], noise[:, kept:]], dim=1)
            fresh = torch.full((shift,), schedule.steps, device=noise.device)
            remaining = torch.cat([self._remaining[shift:], fresh])
        cond = policy.encode(obs)
        target = schedule.target(noise.device)
        estimate = buffer
        while bool((moving := remaining > target).any()):
            buffer, estimate = self._step(buffer, remaining, moving, cond)
            remaining = torch.where(moving, remaining - 1, remaining)
            self.calls += 1
        self._buffer, self._remaining = buffer, remaining
        chunk = torch.where((remaining == 0)[None, :, None], buffer, estimate)
        return policy.normalizer.unnormalize("action", chunk)

    def _step(
        self, x: torch.Tensor, remaining: torch.Tensor, moving: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM (eta = 0) update of the `moving` positions, each at its own level:
        returns the new buffer and the clean-chunk estimate."""
        policy, schedule = self.policy, self.schedule
        cfg = policy.config
        alphas_cumprod = policy.noise_scheduler.alphas_cumprod
        batch = x.shape[0]
        levels = schedule.timesteps(remaining)[None].expand(batch, -1)
        prediction = policy.denoise(x, levels, cond)
        alpha = schedule.alphas(remaining, alphas_cumprod)[None, :, None].to(x.dtype)
        alpha_next = schedule.alphas((remaining - 1).clamp_min(0), alphas_cumprod)
        alpha_next = alpha_next[None, :, None].to(x.dtype)
        noisy = (1 - alpha).clamp_min(1e-12)  # clean positions are left alone below
        if cfg.prediction_type == "epsilon":
            epsilon = prediction
            clean = (x - noisy.sqrt() * epsilon) / alpha.sqrt()
        else:
            clean = prediction
            epsilon = (x - alpha.sqrt() * clean) / noisy.sqrt()
        if cfg.clip_sample:
            clean = clean.clamp(-1.0, 1.0)
        stepped = alpha_next.sqrt() * clean + (1 - alpha_next).sqrt() * epsilon
        return torch.where(moving[None, :, None], stepped, x), clean
