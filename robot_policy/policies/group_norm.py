"""GroupNorm that normalizes in float32 whatever the activations' precision.

Under bfloat16 autocast (`train --precision bf16`) PyTorch's CPU GroupNorm ran on the bf16
activations with fp32 affine parameters, forward and backward twice as slow as in fp32, and
ate most of what bf16 convolutions gained (an image policy's step: convolutions 2.5x faster,
GroupNorm 2x slower). Statistics over a group are also where bf16's 8-bit mantissa loses most.
A subclass, so checkpoints' parameter names and values are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GroupNorm32(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return super().forward(x)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        with torch.autocast(x.device.type, enabled=False):
            out = F.group_norm(x.float(), self.num_groups, weight, bias, self.eps)
        return out.to(x.dtype)
