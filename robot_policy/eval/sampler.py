"""Evaluation's edges of the control loop: the env as an `Arm`, the policy as a worker.

`EnvArm` steps a gymnasium env one control period per command, on simulated time, and reports
what the env reports (success, truncation). `InPlaceSampler` answers a request at once, in the
loop's thread, with noise from a seeded generator, so a whole evaluation is repeatable; it is
where the strategy's policy half lives (plain sampling, sampling told the committed plan, or the
streaming buffer), built before the first episode so a policy that cannot run the strategy
fails before any simulation starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robot_policy.features import STATE_KEY
from robot_policy.policies import ChunkPolicy
from robot_policy.policies.streaming import StreamingSampler
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.control_loop import Observed
from robot_policy.runtime.replan import PlanHints
from robot_policy.runtime.strategies import Strategy


class EpisodeArm:
    """What evaluation reads of an episode's arm: the newest observation (handed to the loop
    once), the actions sent, the policy steps elapsed, success and the end."""

    def __init__(self, first: Mapping[str, np.ndarray]) -> None:
        self.observation = first
        self._fresh: Observed | None = Observed(0.0, first[STATE_KEY], first)
        self.steps = 0
        self.success = False
        self.done = False
        self.executed: list[np.ndarray] = []

    def observe(self) -> Observed | None:
        fresh, self._fresh = self._fresh, None
        return fresh

    def _observed(self, stamp: float, obs: Mapping[str, np.ndarray]) -> None:
        self.observation = obs
        self._fresh = Observed(stamp, obs[STATE_KEY], obs)


class EnvArm(EpisodeArm):
    """An env episode as an arm: `send` steps it one period, `observe` returns the result."""

    def __init__(self, env: gym.Env, first: Mapping[str, np.ndarray], dt: float) -> None:
        super().__init__(first)
        self.env = env
        self.dt = dt

    def send(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        action = command.astype(np.float32)
        self.executed.append(action)
        obs, _, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self._observed(self.steps * self.dt, obs)
        self.success = bool(info["is_success"])
        self.done = self.success or terminated or truncated


class InPlaceSampler:
    """The worker `InferenceSource` feeds during evaluation: synchronous, seeded, counted."""

    def __init__(
        self,
        policy: ChunkPolicy,
        strategy: Strategy,
        generator: torch.Generator,
        on_chunk: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        cfg = policy.config
        self.policy = policy
        self.dt = 1.0 / cfg.fps
        self.device = next(policy.parameters()).device
        self.generator = generator
        self.noise_shape = (1, cfg.horizon, cfg.action_dim)
        if strategy.needs_streaming and not getattr(cfg, "streaming", False):
            raise ValueError(
                f"strategy {strategy.name} needs a checkpoint trained with streaming=true"
            )
        self.stream = StreamingSampler(policy) if strategy.needs_streaming else None
        if self.stream is not None and cfg.warm_start_level > 0:
            raise ValueError("streaming keeps its own buffer: it cannot also warm-start")
        self.on_chunk = on_chunk
        self.seconds: list[float] = []
        self._result: TimedChunk | None = None
        self._last_step: int | None = None

    busy = False  # a request is answered before submit returns

    def new_episode(self, on_chunk: Callable[[int, np.ndarray], None] | None = None) -> None:
        if self.stream is not None:
            self.stream.reset()
        self._last_step = None
        self._result = None
        self.on_chunk = on_chunk

    def submit(self, obs: Mapping[str, Any], stamp: float, hints: PlanHints | None = None) -> None:
        start = time.perf_counter()
        batch = {k: torch.from_numpy(np.asarray(v))[None].to(self.device) for k, v in obs.items()}
        noise = torch.randn(self.noise_shape, generator=self.generator).to(self.device)
        step = round(stamp / self.dt)
        if self.stream is not None:
            shift = self.noise_shape[1] if self._last_step is None else step - self._last_step
            chunk = self.stream.next_chunk(batch, noise, shift)
        else:
            kwargs = (hints or PlanHints()).policy_kwargs(self.device)
            chunk = self.policy.predict_chunk(batch, noise, **kwargs)
        actions = chunk[0].cpu().numpy()
        self._last_step = step
        self.seconds.append(time.perf_counter() - start)
        now_index = self.policy.now_index
        if self.on_chunk is not None:
            self.on_chunk(step - now_index, actions)
        self._result = TimedChunk(stamp, self.dt, actions[now_index:])

    def poll(self) -> TimedChunk | None:
        result, self._result = self._result, None
        return result
