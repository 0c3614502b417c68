"""Min-max normalization of state and action features to [-1, 1], kept inside the model.

The statistics are buffers, so they travel in model.safetensors with the weights: a checkpoint
cannot be loaded with stats from a different dataset by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

# A feature that never moves in the data (a fixed gripper, say) would divide by zero.
_MIN_RANGE = 1e-4


def _buffer_name(key: str) -> str:
    return key.replace(".", "__")


class MinMaxNormalizer(nn.Module):
    def __init__(self, dims: Mapping[str, int]):
        super().__init__()
        self.keys = tuple(dims)
        for key, dim in dims.items():
            self.register_buffer(f"{_buffer_name(key)}__low", torch.full((dim,), -1.0))
            self.register_buffer(f"{_buffer_name(key)}__high", torch.full((dim,), 1.0))

    def set_stats(self, stats: Mapping[str, Mapping[str, Sequence[float] | np.ndarray]]) -> None:
        """Take min/max from a dataset's meta/stats.json layout."""
        for key in self.keys:
            if key not in stats or "min" not in stats[key] or "max" not in stats[key]:
                raise ValueError(f"dataset stats have no min/max for {key!r}")
            low = torch.as_tensor(np.asarray(stats[key]["min"], dtype=np.float32)).flatten()
            high = torch.as_tensor(np.asarray(stats[key]["max"], dtype=np.float32)).flatten()
            current = self._low(key)
            if low.shape != current.shape or high.shape != current.shape:
                raise ValueError(
                    f"stats for {key!r} have shape {tuple(low.shape)}, "
                    f"expected {tuple(current.shape)}"
                )
            if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
                raise ValueError(f"stats for {key!r} are not finite")
            current.copy_(low)
            self._high(key).copy_(high)

    def _low(self, key: str) -> torch.Tensor:
        return getattr(self, f"{_buffer_name(key)}__low")

    def _high(self, key: str) -> torch.Tensor:
        return getattr(self, f"{_buffer_name(key)}__high")

    def _scale(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self._low(key), self._high(key)
        centre = (high + low) / 2
        half_range = ((high - low) / 2).clamp_min(_MIN_RANGE / 2)
        return centre, half_range

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        centre, half_range = self._scale(key)
        return (x - centre) / half_range

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        centre, half_range = self._scale(key)
        return x * half_range + centre
