"""Diffusion Policy: DDPM training, DDIM or DPM-Solver++ sampling (diffusers' schedulers)."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from robot_policy.policies.chunk_policy import ChunkPolicy, squared_error
from robot_policy.policies.config import DiffusionConfig, PolicyConfig
from robot_policy.policies.guidance import SampleRequest
from robot_policy.policies.streaming import StreamingSchedule


class DiffusionPolicy(ChunkPolicy):
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        schedule = dict(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type,
        )
        self.noise_scheduler = DDPMScheduler(clip_sample=config.clip_sample, **schedule)
        if config.sampler == "ddim":
            self.sampler = DDIMScheduler(clip_sample=config.clip_sample, **schedule)
        else:
            # DPM-Solver++ has no clip_sample; thresholding is its equivalent guard.
            self.sampler = DPMSolverMultistepScheduler(
                algorithm_type="dpmsolver++", thresholding=False, **schedule
            )

    @staticmethod
    def denoiser_channels(config: PolicyConfig) -> int:
        """A streaming denoiser reads each action's noise level as one more input channel."""
        return config.action_dim + int(getattr(config, "streaming", False))

    @property
    def streaming_schedule(self) -> StreamingSchedule:
        cfg = self.config
        return StreamingSchedule(
            cfg.horizon, self.now_index, cfg.n_action_steps, cfg.num_inference_steps,
            cfg.num_train_timesteps,
        )  # fmt: skip

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The network's prediction for `x` at diffusion timesteps per sample (B,) or, for a
        streaming policy, per action (B, H).

        The shared U-Net embeds one level per sample; a streaming policy gives it the mean
        level there and the per-action levels, scaled to [-1, 1], as an extra input channel.
        """
        if not self.config.streaming:
            if timesteps.ndim > 1:
                raise ValueError("per-action noise levels need a policy trained with streaming")
            return self.denoiser(x, timesteps, cond)
        levels = timesteps.reshape(timesteps.shape[0] if timesteps.ndim else 1, -1)
        levels = levels.expand(x.shape[0], x.shape[1]).float()
        channel = levels / (self.config.num_train_timesteps - 1) * 2 - 1
        out = self.denoiser(torch.cat([x, channel[..., None]], dim=-1), levels.mean(1), cond)
        return out[..., : self.config.action_dim]

    def generative_loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(actions)
        target = noise if self.config.prediction_type == "epsilon" else actions
        if self.config.streaming:
            noisy, levels = self._streaming_corruption(actions, noise)
            return squared_error(self.denoise(noisy, levels, cond), target)
        steps = torch.randint(
            0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device
        )
        noisy = self.noise_scheduler.add_noise(actions, noise, steps)
        return squared_error(self.denoiser(noisy, steps, cond), target)

    def _streaming_corruption(
        self, actions: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Half the batch at one level per sample (plain DDPM training, so plain sampling
        works), half at the per-action levels a streaming buffer passes through."""
        batch, horizon = actions.shape[:2]
        device = actions.device
        alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(device)
        uniform = torch.randint(0, self.config.num_train_timesteps, (batch, 1), device=device)
        uniform = uniform.expand(batch, horizon)
        schedule = self.streaming_schedule
        remaining = schedule.training_remaining(batch, device)
        streamed = schedule.timesteps(remaining)
        use_stream = torch.rand(batch, 1, device=device) < 0.5
        levels = torch.where(use_stream, streamed, uniform)
        alpha = torch.where(
            use_stream, schedule.alphas(remaining, alphas_cumprod), alphas_cumprod[uniform]
        )[..., None]
        return alpha.sqrt() * actions + (1 - alpha).sqrt() * noise, levels

    def _noised(self, x: torch.Tensor, noise: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return self.noise_scheduler.add_noise(x, noise, timestep.expand(x.shape[0]))

    def sample(self, request: SampleRequest) -> torch.Tensor:
        """Denoise from pure noise, or (warm start) from `init` re-noised to the level that
        leaves warm_start_level of the steps. With a guide, the known actions are put back
        after every step at the level just reached (inpainting with the same noise draw, so
        the known part follows one consistent noising path down to the target itself)."""
        noise, cond, guide, init = request.noise, request.cond, request.guide, request.init
        self.sampler.set_timesteps(self.config.num_inference_steps, device=noise.device)
        timesteps = self.sampler.timesteps
        x = noise
        if init is not None:
            steps = max(1, round(self.config.warm_start_level * len(timesteps)))
            timesteps = timesteps[len(timesteps) - steps :]
            x = self._noised(init, noise, timesteps[0])
        for i, t in enumerate(timesteps):
            prediction = self.denoise(x, t.expand(x.shape[0]), cond)
            x = self.sampler.step(prediction, t, x).prev_sample
            if guide is not None:
                known = guide.target
                if i + 1 < len(timesteps):
                    known = self._noised(known, noise, timesteps[i + 1])
                x = guide.blend(x, known)
        return x.clamp(-1.0, 1.0) if self.config.clip_sample else x
