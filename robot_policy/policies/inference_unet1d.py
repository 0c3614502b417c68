"""An inference-only form of `ConditionalUnet1D`, for batch-1 latency on a CPU.

The reference network is right for training but slow at batch 1: PyTorch sends its Conv1d
layers to the im2col fallback (`_slow_conv2d_forward`, 86% of a DP-size step), and every GEMM
reads its weights in a layout the kernel then has to reorder. This form computes the same
function differently:

- activations stay (batch, time, channel), the layout the sample already has, so no transposes;
- every convolution, transposed ones included, is one GEMM over unfolded time windows, with its
  weights packed once into oneDNN's blocked layout (at batch 1 that runs near memory bandwidth);
- FiLM for all blocks is one GEMM on the observation features, done once per chunk (the
  steps of a chunk share the observation), and the noise-level half of it is cached per level
  value, because a sampler visits the same levels in every chunk;
- optionally bfloat16 activations with bfloat16 or int8 weights (a half or a quarter of the
  bytes to stream; GroupNorm keeps fp32 affine parameters and statistics).

It shares the reference's submodules, under the same names, so a policy holding it saves and
loads the same checkpoint layout; the packed copies are rebuilt whenever weights are loaded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from robot_policy.policies.unet1d import (
    ConditionalUnet1D,
    ConvNormMish,
    FiLMResidualBlock,
    check_horizon,
)

# Activation dtype per precision; "int8" means int8 weights (one scale per output channel)
# multiplied into bfloat16 activations.
_ACTIVATIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.bfloat16}
PRECISIONS = tuple(_ACTIVATIONS)

# Distinct noise levels whose FiLM terms are kept: a 100-step DDIM schedule needs 100.
_LEVEL_CACHE_SIZE = 256

_Gemm = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Recipe:
    """How every GEMM of the network is built: its arithmetic and its weight layout."""

    precision: str
    packed: bool  # oneDNN's packed weight layout: no per-call weight reorder

    @property
    def dtype(self) -> torch.dtype:
        return _ACTIVATIONS[self.precision]

    def gemm(self, weight: torch.Tensor, bias: torch.Tensor) -> _Gemm:
        """x -> x @ weight.T + bias, weights converted and laid out once, here."""
        weight, bias = weight.detach(), bias.detach()
        if self.precision == "int8":
            if weight.shape[1] % 16 == 0:
                return _int8_gemm(weight, bias.to(self.dtype))
            # The int8 kernel needs the reduction length to be a multiple of 16 (it crashes
            # otherwise). What is left is a thin layer (the first, on the action sample):
            # fp32 is exact and, at this size, twice as fast as oneDNN's bf16 (~10 vs 20 µs).
            weight, bias, dtype = weight.float().contiguous(), bias.float(), self.dtype
            return lambda x: F.linear(x.float(), weight, bias).to(dtype)
        weight, bias = weight.to(self.dtype).contiguous(), bias.to(self.dtype)
        if self.packed:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight)
            return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        return lambda x: F.linear(x, weight, bias)


def _int8_gemm(weight: torch.Tensor, bias: torch.Tensor) -> _Gemm:
    scale = weight.float().abs().amax(1).clamp_min(torch.finfo(torch.float32).tiny) / 127
    quantized = torch.round(weight.float() / scale[:, None]).to(torch.int8)
    scale = scale.to(bias.dtype)

    def gemm(x: torch.Tensor) -> torch.Tensor:
        y = torch._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), quantized, scale)
        return y.add_(bias).view(*x.shape[:-1], -1)

    return gemm


class _GemmConv1d:
    """A 1D convolution on (B, T, C) activations as one GEMM over unfolded time windows.

    A transposed convolution with stride s becomes s stride-1 convolutions (one per output
    phase) stacked along the output channels; the GEMM's (B, T, s*O) result is then already
    the interleaved (B, s*T, O) output in memory.

    The weights are ordered (tap, channel), so the window of output t is one contiguous run
    of the padded input, K·C values from row t·stride on: the windows are an overlapping
    strided view, made contiguous with one copy (half the cost of unfold + flatten, which
    order them (channel, tap)).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        stride: int,
        pad: tuple[int, int],
        phases: int,
        recipe: _Recipe,
    ):
        out_ch, in_ch, self.kernel = weight.shape
        self.stride, self.pad, self.phases = stride, pad, phases
        self.pointwise = self.kernel == 1 and stride == 1 and pad == (0, 0)
        self.gemm = recipe.gemm(weight.transpose(1, 2).reshape(out_ch, -1), bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, recipe: _Recipe) -> _GemmConv1d:
        _check_plain(conv)
        (pad,) = conv.padding
        return cls(conv.weight, conv.bias, conv.stride[0], (pad, pad), 1, recipe)

    @classmethod
    def from_transposed(cls, conv: nn.ConvTranspose1d, recipe: _Recipe) -> _GemmConv1d:
        """Output j = s*m + r (phase r) sums x[i] W[kk] over j = s*i - p + kk, i.e. over
        x[m + d] with d = (r + p - kk) / s wherever that is an integer."""
        _check_plain(conv)
        (s,), (p,) = conv.stride, conv.padding
        in_ch, out_ch, k = conv.weight.shape
        if conv.output_padding[0] or k - 2 * p != s:
            raise ValueError(
                "only transposed convolutions that exactly multiply the length by the stride "
                f"(kernel - 2*padding == stride, no output_padding) are supported, got {conv}"
            )
        taps = [
            (r, kk, (r + p - kk) // s) for r in range(s) for kk in range(k) if (r + p - kk) % s == 0
        ]
        lo = min(d for *_, d in taps)
        hi = max(d for *_, d in taps)
        weight = conv.weight.new_zeros(s, out_ch, in_ch, hi - lo + 1)
        for r, kk, d in taps:
            weight[r, :, :, d - lo] = conv.weight[:, :, kk].T
        bias = conv.bias.repeat(s)
        return cls(weight.reshape(s * out_ch, in_ch, -1), bias, 1, (-lo, hi), s, recipe)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise:
            windows = x
        else:
            padded = F.pad(x, (0, 0, *self.pad)).contiguous()
            batch, length, channels = padded.shape
            windows = padded.as_strided(
                (batch, (length - self.kernel) // self.stride + 1, self.kernel * channels),
                (padded.stride(0), self.stride * channels, 1),
            ).contiguous()
        y = self.gemm(windows)
        return y if self.phases == 1 else y.view(y.shape[0], -1, y.shape[-1] // self.phases)


def _check_plain(conv: nn.Conv1d | nn.ConvTranspose1d) -> None:
    if conv.groups != 1 or conv.dilation != (1,) or conv.padding_mode != "zeros":
        raise ValueError(f"only ungrouped, undilated, zero-padded convolutions: got {conv}")
    if conv.bias is None:
        raise ValueError(f"convolutions without bias are not supported: got {conv}")


class _ConvNormMish:
    def __init__(self, layer: ConvNormMish, recipe: _Recipe):
        conv, self.norm, _ = layer
        self.conv = _GemmConv1d.from_conv(conv, recipe)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # A (B, T, C) tensor viewed as (B, C, 1, T) is channels-last, which GroupNorm reads and
        # writes in place of a transposed copy.
        y = self.conv(x).transpose(1, 2).unsqueeze(2)
        norm = self.norm
        y = F.group_norm(y, norm.num_groups, norm.weight, norm.bias, norm.eps)
        return F.mish(y.squeeze(2).transpose(1, 2))


class _Block:
    def __init__(self, block: FiLMResidualBlock, recipe: _Recipe):
        self.first = _ConvNormMish(block.first, recipe)
        self.second = _ConvNormMish(block.second, recipe)
        skip = block.skip
        self.skip = _GemmConv1d.from_conv(skip, recipe) if isinstance(skip, nn.Conv1d) else None

    def __call__(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        h = self.second(torch.addcmul(shift, self.first(x), scale))
        return h + (x if self.skip is None else self.skip(x))


class InferenceUnet1D(nn.Module):
    """`ConditionalUnet1D`'s function and call signature, computed for inference latency.

    Inference only: `train()` raises, gradients do not flow, and the tensors must be on the
    CPU. Accuracy: fp32 matches the reference to float rounding; bf16 and int8 to about 1% of
    the output's scale.
    """

    def __init__(
        self,
        reference: ConditionalUnet1D | InferenceUnet1D,
        precision: str = "fp32",
        packed: bool | None = None,
    ):
        """`packed`: hold weights in oneDNN's packed layout (default: when PyTorch has oneDNN)."""
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.downsampling = reference.downsampling
        # The reference's own submodules, under the same names: identical state_dict keys.
        for name, child in reference.named_children():
            self.add_module(name, child)
        self._recipe = _Recipe(
            precision, torch.backends.mkldnn.is_available() if packed is None else packed
        )
        self._build()
        self.register_load_state_dict_post_hook(lambda module, _: module._build())
        super().train(False)

    def train(self, mode: bool = True) -> InferenceUnet1D:
        if mode:
            raise RuntimeError(
                "InferenceUnet1D is inference-only; train the policy's reference ConditionalUnet1D"
            )
        return super().train(False)

    @torch.no_grad()
    def _build(self) -> None:
        """(Re)derive the GEMM kernels from the shared parameters."""
        recipe = self._recipe
        self._down = [
            (
                _Block(first, recipe),
                _Block(second, recipe),
                _GemmConv1d.from_conv(down, recipe) if isinstance(down, nn.Conv1d) else None,
            )
            for first, second, down in self.down
        ]
        self._mid = [_Block(block, recipe) for block in self.mid]
        self._up = [
            (_Block(first, recipe), _Block(second, recipe), _GemmConv1d.from_transposed(up, recipe))
            for first, second, up in self.up
        ]
        self._head = _ConvNormMish(self.head[0], recipe)
        self._out = _GemmConv1d.from_conv(self.head[1], recipe)
        # FiLM of every block from one GEMM: the columns of each block's Linear split into the
        # noise-level part (cached per level) and the observation part (one GEMM per call).
        films = [
            block.film[1]
            for module in (*self.down, self.mid, *self.up)
            for block in module
            if isinstance(block, FiLMResidualBlock)
        ]
        weight = torch.cat([f.weight for f in films])
        level_dim = self.step_encoder[-1].out_features
        self._film_level_weight = weight[:, :level_dim].clone()
        self._film_cond = recipe.gemm(weight[:, level_dim:], torch.cat([f.bias for f in films]))
        # Each block's (scale, shift), in the order the blocks run.
        self._film_sizes = [n for f in films for n in (f.out_features // 2,) * 2]
        self._level_cache: OrderedDict[float, torch.Tensor] = OrderedDict()
        self._cond_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _level_film(self, level: torch.Tensor) -> torch.Tensor:
        """(B,) levels -> (B, sum of FiLM widths): the noise-level part of every block's FiLM."""
        values = level.tolist()
        if any(v != values[0] for v in values):
            return self._compute_level_film(level)
        cached = self._level_cache.get(values[0])
        if cached is None:
            cached = self._compute_level_film(level[:1])
            self._level_cache[values[0]] = cached
            if len(self._level_cache) > _LEVEL_CACHE_SIZE:
                self._level_cache.popitem(last=False)
        else:
            self._level_cache.move_to_end(values[0])
        return cached.expand(len(values), -1)

    def _cond_film(self, global_cond: torch.Tensor) -> torch.Tensor:
        """(B, C) -> the observation part of every block's FiLM. It is the same for every step
        of a chunk, so the last one is kept, keyed by value: comparing is one cheap op, where
        recomputing is the widest GEMM of a small network's step."""
        cached = self._cond_cache
        if (
            cached is not None
            and cached[0].shape == global_cond.shape
            and torch.equal(cached[0], global_cond)
        ):
            return cached[1]
        film = self._film_cond(F.mish(global_cond.to(self._recipe.dtype)))
        self._cond_cache = (global_cond.clone(), film)
        return film

    def _compute_level_film(self, level: torch.Tensor) -> torch.Tensor:
        embedding = F.mish(self.step_encoder(level))
        return F.linear(embedding, self._film_level_weight).to(self._recipe.dtype)

    @torch.no_grad()
    def forward(
        self, sample: torch.Tensor, level: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        """sample (B, T, A), level (B,) or scalar, global_cond (B, C) -> (B, T, A)."""
        check_horizon(sample.shape[1], self.downsampling)
        if sample.device.type != "cpu":
            raise ValueError(f"InferenceUnet1D runs on the CPU; got a {sample.device} sample")
        level = level.expand(sample.shape[0]) if level.ndim == 0 else level
        dtype = self._recipe.dtype
        film = self._cond_film(global_cond) + self._level_film(level)
        films = iter(film.unsqueeze(1).split(self._film_sizes, dim=-1))

        def block(b: _Block, x: torch.Tensor) -> torch.Tensor:
            return b(x, next(films), next(films))

        x = sample.to(dtype)
        skips = []
        for first, second, down in self._down:
            x = block(second, block(first, x))
            skips.append(x)
            x = x if down is None else down(x)
        for mid in self._mid:
            x = block(mid, x)
        for first, second, up in self._up:
            x = torch.cat([x, skips.pop()], dim=-1)
            x = up(block(second, block(first, x)))
        return self._out(self._head(x)).to(sample.dtype)
