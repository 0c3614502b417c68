"""Flow matching (rectified flow): a straight path from the action chunk (t = 0) to noise (t = 1).

The network predicts the constant velocity noise - action along that path; sampling integrates
it backwards from t = 1 with Euler or midpoint steps. Straight paths are why one step works.
"""

from __future__ import annotations

import torch

from robot_policy.policies.chunk_policy import ChunkPolicy, squared_error
from robot_policy.policies.config import FlowConfig
from robot_policy.policies.guidance import SampleRequest, guided_velocity

# The shared U-Net embeds its noise level sinusoidally; scaling t in [0, 1] to the range of
# diffusion timesteps gives the embedding comparable resolution for both policy types.
TIME_SCALE = 100.0


class FlowPolicy(ChunkPolicy):
    config: FlowConfig

    def velocity(
        self, x: torch.Tensor, t: torch.Tensor | float, cond: torch.Tensor
    ) -> torch.Tensor:
        level = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.denoiser(x, level * TIME_SCALE, cond)

    def generative_loss(self, actions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(actions)
        t = torch.rand(actions.shape[0], device=actions.device)
        x_t = actions + t[:, None, None] * (noise - actions)
        return squared_error(self.velocity(x_t, t, cond), noise - actions)

    def sample(self, request: SampleRequest) -> torch.Tensor:
        """Integrate from t = 1 (or, warm-started, from t = warm_start_level on the straight
        path between `init` and the noise) to t = 0 with steps of the configured size."""
        noise, cond, guide, init = request.noise, request.cond, request.guide, request.init
        cfg = self.config
        start, steps = 1.0, cfg.num_inference_steps
        x = noise
        if init is not None:
            start = cfg.warm_start_level
            steps = max(1, round(start * cfg.num_inference_steps))
            x = init + start * (noise - init)
        dt = start / steps

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            if guide is None:
                return self.velocity(x, t, cond)
            return guided_velocity(
                lambda y: self.velocity(y, t, cond), x, t, guide, cfg.guidance_max_weight
            )

        for i in range(steps):
            t = start - i * dt
            v = velocity(x, t)
            if cfg.integrator == "midpoint":
                v = velocity(x - 0.5 * dt * v, t - 0.5 * dt)
            x = x - dt * v
        return x
