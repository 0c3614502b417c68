"""Flow matching (rectified flow): a straight path from the action chunk (t = 0) to noise (t = 1).

The network predicts the constant velocity noise - action along that path; sampling integrates
it backwards from t = 1 with Euler or midpoint steps. Straight paths are why one step works.
"""

from __future__ import annotations

import torch

from robot_policy.policies.chunk_policy import ChunkPolicy, squared_error
from robot_policy.policies.config import FlowConfig

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

    def sample(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        steps = self.config.num_inference_steps
        dt = 1.0 / steps
        x = noise
        for i in range(steps):
            t = 1.0 - i * dt
            v = self.velocity(x, t, cond)
            if self.config.integrator == "midpoint":
                v = self.velocity(x - 0.5 * dt * v, t - 0.5 * dt, cond)
            x = x - dt * v
        return x
