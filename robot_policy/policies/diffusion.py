"""Diffusion Policy: DDPM training, DDIM or DPM-Solver++ sampling (diffusers' schedulers)."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from robot_policy.policies.chunk_policy import ChunkPolicy, squared_error
from robot_policy.policies.config import DiffusionConfig


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

    def generative_loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(actions)
        steps = torch.randint(
            0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device
        )
        noisy = self.noise_scheduler.add_noise(actions, noise, steps)
        target = noise if self.config.prediction_type == "epsilon" else actions
        return squared_error(self.denoiser(noisy, steps, cond), target)

    def sample(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.sampler.set_timesteps(self.config.num_inference_steps, device=noise.device)
        x = noise
        for t in self.sampler.timesteps:
            prediction = self.denoiser(x, t.expand(x.shape[0]), cond)
            x = self.sampler.step(prediction, t, x).prev_sample
        return x.clamp(-1.0, 1.0) if self.config.clip_sample else x
