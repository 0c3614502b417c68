"""Policy configurations: one dataclass per policy type, serialized to a checkpoint's config.json.

A config fully determines the network's shapes, so a checkpoint can be rebuilt from config.json
alone and its weights checked against it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from robot_policy.settings import load

CONFIG_FORMAT_VERSION = 1


@dataclass
class PolicyConfig:
    """What every action-chunk policy shares: observation layout, horizons and the denoiser."""

    type: ClassVar[str]

    action_dim: int
    state_keys: tuple[str, ...]
    state_dims: tuple[int, ...]
    camera_keys: tuple[str, ...] = ()
    image_size: tuple[int, int] = (96, 96)
    crop_size: tuple[int, int] = (84, 84)
    # Training-time photometric augmentation of camera frames (0 = off; encoders.color_jitter):
    # per-channel gains 1 +- this, brightness +- this / 4, desaturation up to this.
    color_jitter: float = 0.0
    fps: float = 10.0
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    # Denoiser (conditional 1D U-Net)
    down_dims: tuple[int, ...] = (64, 128, 256)
    kernel_size: int = 5
    step_embed_dim: int = 128
    n_groups: int = 8
    # Observation encoders
    state_hidden_dim: int = 256
    state_feature_dim: int = 64
    image_channels: tuple[int, ...] = (32, 64, 128)
    image_keypoints: int = 32
    image_feature_dim: int = 64
    # Training-time-only supervision of the image encoders: a head that predicts these features
    # (for an image policy in sim, `observation.environment_state`: the cube and target poses)
    # from each step's camera features. It makes the encoder find the cube, which the action
    # loss alone teaches slowly; the head is never run at inference and the policy never
    # receives these features as input.
    aux_keys: tuple[str, ...] = ()
    aux_dims: tuple[int, ...] = ()
    aux_loss_weight: float = 1.0
    # Sampling
    num_inference_steps: int = 10
    # Warm start: when the caller hands in the previous plan (shifted to the new observation),
    # re-noise it to this fraction of the noise scale and run only that fraction of the steps
    # (0 disables; the chunk is then sampled from pure noise).
    warm_start_level: float = 0.0

    def __post_init__(self) -> None:
        self.state_keys = tuple(self.state_keys)
        self.state_dims = tuple(int(d) for d in self.state_dims)
        self.camera_keys = tuple(self.camera_keys)
        self.image_size = tuple(self.image_size)
        self.crop_size = tuple(self.crop_size)
        self.down_dims = tuple(self.down_dims)
        self.image_channels = tuple(self.image_channels)
        self.aux_keys = tuple(self.aux_keys)
        self.aux_dims = tuple(int(d) for d in self.aux_dims)
        problems = []
        if len(self.aux_keys) != len(self.aux_dims):
            problems.append("aux_keys and aux_dims differ in length")
        if self.aux_keys and not self.camera_keys:
            problems.append("aux_keys supervise the image encoders: they need camera_keys")
        if set(self.aux_keys) & set(self.state_keys):
            problems.append("aux_keys must not be inputs too (they are in state_keys)")
        if not (math.isfinite(self.aux_loss_weight) and self.aux_loss_weight >= 0):
            problems.append(f"aux_loss_weight must be finite and >= 0, got {self.aux_loss_weight}")
        if len(self.state_keys) != len(self.state_dims):
            problems.append("state_keys and state_dims differ in length")
        if not self.state_keys and not self.camera_keys:
            problems.append("the policy observes nothing (no state_keys, no camera_keys)")
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            problems.append(
                f"n_action_steps {self.n_action_steps} must be in 1..horizon-n_obs_steps+1 "
                f"({self.horizon - self.n_obs_steps + 1})"
            )
        if self.horizon % 2 ** (len(self.down_dims) - 1):
            problems.append(f"horizon {self.horizon} is not a multiple of 2**(len(down_dims)-1)")
        if any(c > s for c, s in zip(self.crop_size, self.image_size, strict=True)):
            problems.append(f"crop_size {self.crop_size} exceeds image_size {self.image_size}")
        if not (math.isfinite(self.color_jitter) and 0.0 <= self.color_jitter <= 1.0):
            problems.append(f"color_jitter must be in [0, 1], got {self.color_jitter}")
        if self.num_inference_steps < 1:
            problems.append("num_inference_steps must be >= 1")
        if not 0.0 <= self.warm_start_level < 1.0:
            problems.append(f"warm_start_level {self.warm_start_level} must be in [0, 1)")
        if problems:
            raise ValueError(f"invalid {self.type} policy config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "format_version": CONFIG_FORMAT_VERSION,
            **dataclasses.asdict(self),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PolicyConfig:
        data = dict(data)
        version = data.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"config format_version {version!r} is not supported "
                f"(expected {CONFIG_FORMAT_VERSION})"
            )
        kind = data.pop("type", None)
        if kind not in CONFIG_TYPES:
            raise ValueError(
                f"unknown policy type {kind!r}; expected one of {sorted(CONFIG_TYPES)}"
            )
        # settings.load: unknown fields are errors, values are checked against the annotations.
        return load(CONFIG_TYPES[kind], data, f"{kind} config")


@dataclass
class DiffusionConfig(PolicyConfig):
    type: ClassVar[str] = "diffusion"

    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    # "sample" (predict the clean chunk): on push with 100 demos and 8-10k steps it reached 0.94
    # success where "epsilon" reached 0.46 (BENCHMARKS.md); both are supported.
    prediction_type: str = "sample"  # or "epsilon"
    clip_sample: bool = True
    sampler: str = "ddim"  # or "dpmsolver++"
    # Streaming Diffusion Policy: the denoiser sees a noise level per action (an extra input
    # channel), and training mixes in the chunk-wise rising levels of the streaming buffer, so
    # the policy can keep a partially denoised buffer between observations (`streaming.py`).
    # It samples plain chunks as well; the architecture differs, so it is fixed at training.
    streaming: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prediction_type not in ("epsilon", "sample"):
            raise ValueError(
                f"prediction_type must be 'epsilon' or 'sample', got {self.prediction_type!r}"
            )
        if self.sampler not in ("ddim", "dpmsolver++"):
            raise ValueError(f"sampler must be 'ddim' or 'dpmsolver++', got {self.sampler!r}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError("num_inference_steps must be in 1..num_train_timesteps")
        if self.streaming and self.sampler != "ddim":
            raise ValueError("streaming sampling is a per-action DDIM update: use sampler 'ddim'")


@dataclass
class FlowConfig(PolicyConfig):
    type: ClassVar[str] = "flow"

    integrator: str = "euler"  # or "midpoint"
    # Real-time chunking: the prefix guidance weight is clipped here (RTC's beta; LeRobot's
    # default 10), since the PiGDM weight grows without bound near pure noise.
    guidance_max_weight: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.integrator not in ("euler", "midpoint"):
            raise ValueError(f"integrator must be 'euler' or 'midpoint', got {self.integrator!r}")
        if not (math.isfinite(self.guidance_max_weight) and self.guidance_max_weight >= 0):
            raise ValueError(
                f"guidance_max_weight must be finite and >= 0, got {self.guidance_max_weight}"
            )


CONFIG_TYPES: dict[str, type[PolicyConfig]] = {c.type: c for c in (DiffusionConfig, FlowConfig)}
