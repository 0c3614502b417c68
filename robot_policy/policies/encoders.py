"""Observation encoders: per-step features that condition the denoiser.

State vectors go through a small MLP; each camera goes through its own small ResNet with
GroupNorm (BatchNorm's running statistics fight EMA weights and tiny batches) and a spatial
softmax, which turns feature maps into expected keypoint coordinates — what manipulation
policies need from an image far more than global texture.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from robot_policy.policies.group_norm import GroupNorm32


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) -> (B, 2K): the softmax-weighted mean (x, y) of K learned keypoint maps."""

    def __init__(self, in_channels: int, height: int, width: int, num_keypoints: int):
        super().__init__()
        self.keypoints = nn.Conv2d(in_channels, num_keypoints, 1)
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        self.register_buffer(
            "grid", torch.stack([xs.flatten(), ys.flatten()], dim=-1), persistent=False
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.keypoints(features).flatten(2)  # (B, K, H*W)
        attention = maps.softmax(dim=-1)
        return (attention @ self.grid).flatten(1)  # (B, K*2)


class ResidualBlock2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, n_groups: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            GroupNorm32(n_groups, out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            GroupNorm32(n_groups, out_ch),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and in_ch == out_ch
            else nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                GroupNorm32(n_groups, out_ch),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class ImageEncoder(nn.Module):
    """uint8-derived float image (B, 3, H, W) in [0, 1] -> (B, out_dim)."""

    def __init__(
        self,
        image_size: tuple[int, int],
        channels: tuple[int, ...] = (32, 64, 128),
        num_keypoints: int = 32,
        out_dim: int = 64,
        n_groups: int = 8,
    ):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels[0], 5, stride=2, padding=2, bias=False),
            GroupNorm32(n_groups, channels[0]),
            nn.ReLU(inplace=True),
        ]
        # Every block halves the resolution (84 px -> 6x6 keypoint maps): on a CPU the early
        # full-resolution blocks would cost 3x the time for little a keypoint head can use.
        width = channels[0]
        for ch in channels:
            layers.append(ResidualBlock2d(width, ch, stride=2, n_groups=n_groups))
            width = ch
        self.backbone = nn.Sequential(*layers)
        with torch.no_grad():
            fh, fw = self.backbone(torch.zeros(1, 3, *image_size)).shape[-2:]
        self.pool = SpatialSoftmax(width, fh, fw, num_keypoints)
        self.project = nn.Sequential(nn.Linear(2 * num_keypoints, out_dim), nn.ReLU(inplace=True))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # Centre [0, 1] pixels on zero before the first convolution.
        return self.project(self.pool(self.backbone(image * 2.0 - 1.0)))


class StateEncoder(nn.Sequential):
    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.Mish(), nn.Linear(hidden_dim, out_dim))


def random_crop(
    images: torch.Tensor, size: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Independent random crop per sample (B, C, H, W) -> (B, C, h, w): shift augmentation."""
    b, _, h, w = images.shape
    ch, cw = size
    top = torch.randint(0, h - ch + 1, (b,), generator=generator, device=images.device)
    left = torch.randint(0, w - cw + 1, (b,), generator=generator, device=images.device)
    rows = top[:, None] + torch.arange(ch, device=images.device)[None, :]  # (B, ch)
    cols = left[:, None] + torch.arange(cw, device=images.device)[None, :]  # (B, cw)
    batch = torch.arange(b, device=images.device)[:, None, None]
    cropped = images.permute(0, 2, 3, 1)[
        batch, rows[:, :, None], cols[:, None, :]
    ]  # (B, ch, cw, C)
    return cropped.permute(0, 3, 1, 2)


def color_jitter(
    images: torch.Tensor, strength: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-sample photometric augmentation of (B, 3, H, W) images in 0..1: each channel's gain
    varies by 1 +- strength, the brightness by +- strength / 4, and the colours are pulled
    towards grey by up to `strength`. A policy trained on one table colour and one light learns
    the cube's place from its colour contrast with the table instead of the exact RGB values,
    so a table colour or a light it never saw rendered does not blind it."""
    b = images.shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        draw = torch.rand(shape, generator=generator, device=images.device)
        return (2.0 * draw - 1.0).to(images.dtype)

    gain = 1.0 + strength * uniform(b, 3, 1, 1)
    offset = 0.25 * strength * uniform(b, 1, 1, 1)
    desaturate = (0.5 * strength * (1.0 + uniform(b, 1, 1, 1))).clamp(0.0, 1.0)
    jittered = images * gain + offset
    grey = jittered.mean(dim=1, keepdim=True)
    return (jittered + desaturate * (grey - jittered)).clamp(0.0, 1.0)


def center_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = images.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return images[..., top : top + size[0], left : left + size[1]]
