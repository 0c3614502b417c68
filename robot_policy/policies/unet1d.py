"""Conditional 1D U-Net over an action sequence, in the style of Diffusion Policy.

The denoiser sees a (batch, horizon, action_dim) sequence, a scalar noise level per sample
(a diffusion timestep or a flow time, already scaled by the caller) and a global conditioning
vector (observation features). Conditioning enters every residual block through FiLM, so the
temporal convolutions stay purely about the action sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robot_policy.policies.group_norm import GroupNorm32


def check_horizon(horizon: int, downsampling: int) -> None:
    """Every down level halves the sequence and every up level doubles it back, so the two
    paths only meet again when the horizon divides evenly."""
    if horizon % downsampling:
        raise ValueError(
            f"horizon {horizon} must be a multiple of {downsampling} for this U-Net depth"
        )


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal features of a scalar, so nearby noise levels look alike."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim must be even, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConvNormMish(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int):
        super().__init__(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            GroupNorm32(n_groups, out_ch),
            nn.Mish(),
        )


class FiLMResidualBlock(nn.Module):
    """Two conv blocks; the conditioning scales and shifts the features between them."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.first = ConvNormMish(in_ch, out_ch, kernel_size, n_groups)
        self.second = ConvNormMish(out_ch, out_ch, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_ch))
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.second(h * scale + shift)
        return h + self.skip(x)


class ConditionalUnet1D(nn.Module):
    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...] = (256, 512, 1024),
        kernel_size: int = 5,
        step_embed_dim: int = 256,
        n_groups: int = 8,
    ):
        super().__init__()
        if not down_dims:
            raise ValueError("down_dims must name at least one level")
        self.downsampling = 2 ** (len(down_dims) - 1)
        self.step_encoder = nn.Sequential(
            SinusoidalEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim

        def block(i: int, o: int) -> FiLMResidualBlock:
            return FiLMResidualBlock(i, o, cond_dim, kernel_size, n_groups)

        widths = [action_dim, *down_dims]
        levels = list(zip(widths[:-1], widths[1:], strict=True))
        self.down = nn.ModuleList()
        for depth, (w_in, w_out) in enumerate(levels):
            last = depth == len(levels) - 1
            resample = nn.Identity() if last else nn.Conv1d(w_out, w_out, 3, stride=2, padding=1)
            self.down.append(nn.ModuleList([block(w_in, w_out), block(w_out, w_out), resample]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        # Every up level doubles the length back; the finest skip is left unused, as in
        # Diffusion Policy, so the decoder mirrors the encoder's downsampling steps exactly.
        for w_in, w_out in reversed(levels[1:]):
            upsample = nn.ConvTranspose1d(w_in, w_in, 4, stride=2, padding=1)
            self.up.append(nn.ModuleList([block(2 * w_out, w_in), block(w_in, w_in), upsample]))
        self.head = nn.Sequential(
            ConvNormMish(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(
        self, sample: torch.Tensor, level: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """sample (B, T, A), level (B,) or scalar, global_cond (B, C) -> (B, T, A)."""
        check_horizon(sample.shape[1], self.downsampling)
        level = level.expand(sample.shape[0]) if level.ndim == 0 else level
        cond = torch.cat([self.step_encoder(level), global_cond], dim=-1)
        x = sample.transpose(1, 2)
        skips = []
        for first, second, downsample in self.down:
            x = second(first(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for mid in self.mid:
            x = mid(x, cond)
        for first, second, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(second(first(x, cond), cond))
        return self.head(x).transpose(1, 2)
