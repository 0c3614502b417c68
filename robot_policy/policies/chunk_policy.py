"""What diffusion and flow policies share: observation encoding, normalization and the denoiser.

A subclass supplies only the generative part: how to corrupt an action chunk for training
(`loss`) and how to turn noise into a chunk (`sample`). Everything else, including the
observation layout and the U-Net, lives here once.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from robot_policy.policies.config import PolicyConfig
from robot_policy.policies.encoders import (
    ImageEncoder,
    StateEncoder,
    center_crop,
    color_jitter,
    random_crop,
)
from robot_policy.policies.guidance import PrefixGuide, SampleRequest, soft_prefix_mask
from robot_policy.policies.normalize import MinMaxNormalizer
from robot_policy.policies.unet1d import ConditionalUnet1D

Batch = Mapping[str, torch.Tensor]


class ChunkPolicy(nn.Module, ABC):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        dims = dict(zip(config.state_keys, config.state_dims, strict=True))
        aux = dict(zip(config.aux_keys, config.aux_dims, strict=True))
        self.normalizer = MinMaxNormalizer({**dims, **aux, "action": config.action_dim})
        per_step = 0
        self.state_encoder = None
        if config.state_keys:
            self.state_encoder = StateEncoder(
                sum(config.state_dims), config.state_hidden_dim, config.state_feature_dim
            )
            per_step += config.state_feature_dim
        self.image_encoders = nn.ModuleList(
            ImageEncoder(
                config.crop_size,
                config.image_channels,
                config.image_keypoints,
                config.image_feature_dim,
                config.n_groups,
            )
            for _ in config.camera_keys
        )
        per_step += self._image_dim
        self.aux_head = None
        if config.aux_keys:
            self.aux_head = nn.Sequential(
                nn.Linear(self._image_dim, config.state_hidden_dim),
                nn.Mish(),
                nn.Linear(config.state_hidden_dim, sum(config.aux_dims)),
            )
        self.denoiser = ConditionalUnet1D(
            self.denoiser_channels(config),
            config.n_obs_steps * per_step,
            config.down_dims,
            config.kernel_size,
            config.step_embed_dim,
            config.n_groups,
        )

    @staticmethod
    def denoiser_channels(config: PolicyConfig) -> int:
        """Channels the U-Net carries per action step (a subclass may add conditioning ones)."""
        return config.action_dim

    def encode(self, obs: Batch) -> torch.Tensor:
        """Observation history (each key (B, n_obs_steps, ...)) -> global conditioning (B, C)."""
        return self._features(obs).flatten(1)

    def _features(self, obs: Batch) -> torch.Tensor:
        """Per-step features (B, n_obs_steps, F): the state's, then each camera's."""
        cfg = self.config
        features = []
        if self.state_encoder is not None:
            state = torch.cat(
                [self.normalizer.normalize(k, obs[k].float()) for k in cfg.state_keys], dim=-1
            )
            features.append(self.state_encoder(state))
        for key, encoder in zip(cfg.camera_keys, self.image_encoders, strict=True):
            frames = obs[key]  # (B, T, H, W, 3) uint8
            b, t = frames.shape[:2]
            images = frames.reshape(b * t, *frames.shape[2:]).permute(0, 3, 1, 2).float() / 255.0
            if self.training:
                images = random_crop(images, cfg.crop_size)
                if cfg.color_jitter:
                    images = color_jitter(images, cfg.color_jitter)
            else:
                images = center_crop(images, cfg.crop_size)
            features.append(encoder(images).reshape(b, t, -1))
        return torch.cat(features, dim=-1)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Training loss on a batch of windows (obs history + `action` (B, horizon, A)), plus
        the weighted auxiliary loss when the config names aux_keys."""
        features = self._features(batch)
        actions = self.normalizer.normalize("action", batch["action"].float())
        per_element = self.generative_loss(actions, features.flatten(1))  # (B, horizon, A)
        pad = batch.get("action_is_pad")
        if pad is None:
            loss = per_element.mean()
        else:
            keep = (~pad.bool()).unsqueeze(-1).to(per_element.dtype)
            loss = (per_element * keep).sum() / keep.sum().clamp_min(1.0) / per_element.shape[-1]
        if self.aux_head is None:
            return loss
        return loss + self.config.aux_loss_weight * self.aux_loss(batch, features)

    def aux_loss(self, batch: Batch, features: torch.Tensor) -> torch.Tensor:
        """Mean squared error, in normalized units, of the aux head's prediction of the
        aux_keys at every observation step from that step's camera features."""
        cfg = self.config
        image_features = features[..., features.shape[-1] - self._image_dim :]
        target = torch.cat(
            [self.normalizer.normalize(k, batch[k].float()) for k in cfg.aux_keys], dim=-1
        )
        return F.mse_loss(self.aux_head(image_features).float(), target)

    @property
    def _image_dim(self) -> int:
        return len(self.config.camera_keys) * self.config.image_feature_dim

    @property
    def now_index(self) -> int:
        """Index of the chunk's action for the newest observation's time: the window starts
        n_obs_steps - 1 steps in the past (Diffusion Policy's convention)."""
        return self.config.n_obs_steps - 1

    def blank_observation(self) -> dict[str, torch.Tensor]:
        """An all-zero observation history (batch 1) of the right shapes, for warm-up and timing."""
        cfg = self.config
        device = next(self.parameters()).device
        obs = {
            k: torch.zeros(1, cfg.n_obs_steps, d, device=device)
            for k, d in zip(cfg.state_keys, cfg.state_dims, strict=True)
        }
        for key in cfg.camera_keys:
            shape = (1, cfg.n_obs_steps, *cfg.image_size, 3)
            obs[key] = torch.zeros(shape, dtype=torch.uint8, device=device)
        return obs

    def set_inference_steps(self, steps: int) -> None:
        """Change the sampling step count after training (the config re-validates it)."""
        self.config = dataclasses.replace(self.config, num_inference_steps=steps)

    def set_warm_start(self, level: float) -> None:
        """Warm-start level after training (0 turns it off; the config re-validates it)."""
        self.config = dataclasses.replace(self.config, warm_start_level=level)

    def forward(self, batch: Batch) -> torch.Tensor:
        """The training loss, as forward, so DistributedDataParallel can wrap the policy."""
        return self.loss(batch)

    @torch.no_grad()
    def predict_chunk(
        self,
        obs: Batch,
        noise: torch.Tensor | None = None,
        *,
        prefix: torch.Tensor | None = None,
        prefix_steps: int = 0,
        init: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Observation history -> unnormalized action chunk (B, horizon, A).

        Pass `noise` to make sampling reproducible (and to compare implementations).
        `prefix` (B, m, A), m <= horizon: actions already planned for the chunk's first m
        steps (real-time chunking); the first `prefix_steps` are committed and reproduced,
        the rest of the prefix steers the chunk with weights that fade to 0 at m.
        `init` (B, horizon, A): the previous plan shifted to this observation, to warm-start
        from (needs `warm_start_level` > 0 in the config).
        """
        cond = self.encode(obs)
        cfg = self.config
        shape = (cond.shape[0], cfg.horizon, cfg.action_dim)
        if noise is None:
            noise = torch.randn(shape, device=cond.device)
        guide = None if prefix is None else self._prefix_guide(prefix, prefix_steps, shape)
        start = None
        if init is not None:
            if cfg.warm_start_level <= 0:
                raise ValueError("init given but warm_start_level is 0: warm start is off")
            start = self.normalizer.normalize("action", self._actions(init, "init", shape))
        return self.normalizer.unnormalize(
            "action", self.sample(SampleRequest(noise, cond, guide, start))
        )

    def _prefix_guide(
        self, prefix: torch.Tensor, prefix_steps: int, shape: tuple[int, int, int]
    ) -> PrefixGuide:
        batch, horizon, action_dim = shape
        length = prefix.shape[1] if prefix.ndim == 3 else -1
        if not 1 <= length <= horizon:
            raise ValueError(
                f"prefix must have shape (B, m, {action_dim}) with 1 <= m <= {horizon}, "
                f"got {tuple(prefix.shape)}"
            )
        actions = self._actions(prefix, "prefix", (batch, length, action_dim))
        target = torch.zeros(shape, device=actions.device)
        target[:, :length] = self.normalizer.normalize("action", actions)
        weights = soft_prefix_mask(horizon, length, prefix_steps).to(actions.device)
        return PrefixGuide(target, weights)

    def _actions(self, values: torch.Tensor, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """Caller-supplied actions on the policy's device, checked: a wrong shape or a NaN
        here would otherwise surface as a silently wrong chunk."""
        if tuple(values.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(values.shape)}")
        values = values.to(next(self.parameters()).device, torch.float32)
        if not torch.isfinite(values).all():
            raise ValueError(f"{name} contains NaN or inf")
        return values

    @abstractmethod
    def generative_loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Normalized actions (B, H, A) -> unreduced squared error (B, H, A)."""

    @abstractmethod
    def sample(self, request: SampleRequest) -> torch.Tensor:
        """The request's noise (B, H, A) -> normalized action chunk (B, H, A), steered toward
        its `guide` if given, and warm-started from its normalized chunk `init` if given."""


def squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction, target, reduction="none")
