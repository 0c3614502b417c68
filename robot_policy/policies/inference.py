"""Preparing a checkpoint for inference: the one set-up every path shares.

`robot-policy eval`, `bench inference`, `bench loop`, policy_node and the inference child
process all call `prepare_policy` with an `InferenceSettings`, so the network a benchmark times
is the network the graph runs: same device, same precision, same thread count, same steps.

Precision "auto" picks per machine: bf16 where the CPU computes bfloat16 natively (AVX512-BF16
or AMX: twice fp32's speed for this network), else fp32 on the packed fast path. bf16 and int8
go through oneDNN kernels that refuse CPUs without AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT; such a
request is refused up front with the reason, never discovered halfway through a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import torch

from robot_policy.policies.accelerate import accelerate
from robot_policy.policies.checkpoint import load_policy
from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.device import select_device
from robot_policy.policies.inference_unet1d import PRECISIONS, InferenceUnet1D
from robot_policy.policies.unet1d import ConditionalUnet1D
from robot_policy.settings import setting

PRECISION_CHOICES = ("auto", "eager", *PRECISIONS)


@dataclass(frozen=True)
class InferenceSettings:
    """How a policy infers; the CLI's flags and policy_node's parameters of the same names."""

    device: str = setting(
        "auto", "auto (CUDA when present), cpu or cuda", choices=("auto", "cpu", "cuda")
    )
    precision: str = setting(
        "auto",
        "CPU denoiser: auto (bf16 where the CPU has native bfloat16, else fp32), eager (the "
        "plain network), fp32, bf16, or int8 weights with bf16 activations; ignored on CUDA",
        choices=PRECISION_CHOICES,
    )
    threads: int = setting(
        1, "torch intra-op threads for inference (keep 1 beside a control loop)", low=1
    )
    inference_steps: int = setting(
        0, "denoising/integration steps; 0 = the checkpoint's own", low=0
    )

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(
                f"precision must be one of {PRECISION_CHOICES}, got {self.precision!r}"
            )
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.inference_steps < 0:
            raise ValueError(f"inference_steps must be >= 0, got {self.inference_steps}")

    def resolved(self) -> InferenceSettings:
        """These settings with `device` and `precision` made concrete for this machine."""
        device = select_device(self.device).type
        precision = self.precision
        if device != "cpu":
            precision = "eager"  # the fast path is a CPU path
        elif precision == "auto":
            precision = "bf16" if native_bf16() and "bf16" in cpu_precisions() else "fp32"
        elif precision != "eager" and precision not in cpu_precisions():
            raise ValueError(
                f"precision {precision} does not run on this CPU ({cpu_capability()}): its "
                f"oneDNN kernels need AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT; this CPU runs "
                f"{', '.join(('eager', *cpu_precisions()))} (or use precision auto)"
            )
        return replace(self, device=device, precision=precision)


def cpu_capability() -> str:
    """torch's name for the CPU's vector unit (AVX2, AVX512, ...), for messages and reports."""
    return torch.backends.cpu.get_cpu_capability()


def native_bf16() -> bool:
    """Whether the CPU computes bfloat16 in hardware (else bf16 is emulated, slower than fp32)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@cache
def cpu_precisions() -> tuple[str, ...]:
    """The fast-path precisions that run here, found by trying each on a tiny network: the
    kernels' requirements differ by build and CPU, and a trial is the one test that cannot
    drift from them."""
    net = ConditionalUnet1D(2, 4, (16, 32), kernel_size=3, step_embed_dim=16, n_groups=4).eval()
    sample, level, cond = torch.zeros(1, 8, 2), torch.zeros(1), torch.zeros(1, 4)
    works = []
    for precision in PRECISIONS:
        try:
            with torch.inference_mode():
                InferenceUnet1D(net, precision)(sample, level, cond)
        except RuntimeError:
            continue
        works.append(precision)
    return tuple(works)


def configure(policy: ChunkPolicy, settings: InferenceSettings) -> InferenceSettings:
    """Put a loaded policy on the settings' device, precision and steps; returns the resolved
    settings (what actually runs). Threads are not set here: they are per thread for OpenMP,
    so the thread that infers sets them (`InferenceWorker`, the inference child, `eval`)."""
    resolved = settings.resolved()
    policy.to(torch.device(resolved.device)).eval()
    if resolved.precision != "eager":
        accelerate(policy, resolved.precision)
    if resolved.inference_steps > 0:
        policy.set_inference_steps(resolved.inference_steps)
    return resolved


def prepare_policy(
    checkpoint: str | Path, settings: InferenceSettings | None = None
) -> tuple[ChunkPolicy, InferenceSettings]:
    """Load `checkpoint` and `configure` it; the policy and the resolved settings."""
    settings = settings or InferenceSettings()
    device = select_device(settings.device)
    policy = load_policy(checkpoint, device=device)
    return policy, configure(policy, settings)
