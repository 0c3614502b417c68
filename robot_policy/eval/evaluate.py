"""Closed-loop evaluation of a chunk policy in sim, without ROS.

Each predicted chunk is placed in (simulated) time and handed to the same `Controller`
(scheduler + safety filter + watchdog) the control node runs. `receding` (Diffusion Policy):
predict `horizon` actions from the last `n_obs_steps` observations, execute `n_action_steps`
of them, re-plan. `ensemble` (ACT): re-plan every step and average all chunks that cover the
current step. `rtc` (real-time chunking): execute like receding, but generate each chunk to
agree with the actions committed while it is computed. `streaming` (Streaming Diffusion
Policy): like receding, with chunks from a rolling, partially denoised buffer. An episode
succeeds the first time the task reports success.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from tqdm import tqdm

from robot_policy.data.video import EpisodeVideoEncoder
from robot_policy.eval.chunk_plot import ChunkTrace, plot_chunks
from robot_policy.eval.jerk import JerkMeter
from robot_policy.policies import ChunkPolicy
from robot_policy.policies.streaming import StreamingSampler
from robot_policy.runtime.chunks import ChunkScheduler, SchedulerConfig, TimedChunk
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.runtime.replan import plan_hints
from robot_policy.safety import SafetyLimits
from robot_policy.sim import SimConfig

ExecutionStrategy = Literal["receding", "ensemble", "rtc", "streaming"]
EXECUTION_STRATEGIES: tuple[str, ...] = get_args(ExecutionStrategy)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest at small n and at 0% or 100%, unlike the normal one."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EvalResult:
    task: str
    strategy: str
    latency_ms: float
    safety: bool
    episodes: int
    successes: int
    success_rate: float
    ci95_low: float
    ci95_high: float
    mean_episode_length: float
    chunks_per_step: float  # policy calls per executed action: 1/n_action_steps .. 1
    denoiser_calls_per_step: float  # network evaluations per executed action
    mean_chunk_ms: float
    safety_interventions: int  # control ticks whose command the safety filter changed
    jerk_mean: float  # executed actions, rad/s³ (largest joint per step); see runtime.jerk
    boundary_jerk_mean: float  # at the steps where a new chunk took over
    boundary_jerk_max: float

    def as_dict(self) -> dict:
        return asdict(self)


def strategies_for(policy: ChunkPolicy) -> tuple[str, ...]:
    """The execution strategies this policy can run: streaming needs a streaming checkpoint."""
    streams = bool(getattr(policy.config, "streaming", False))
    return tuple(s for s in EXECUTION_STRATEGIES if s != "streaming" or streams)


class _CallCounter:
    """Counts a module's forward calls: denoiser evaluations, whatever the sampler does."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._count)

    def _count(self, *_: object) -> None:
        self.calls += 1

    def close(self) -> None:
        self._handle.remove()


class _ChunkMaker:
    """The way from an observation to a chunk: plain sampling, sampling told about the plan it
    takes over (rtc, warm start), or the streaming buffer. Built before the first episode, so
    a policy that cannot run the strategy fails before any simulation starts."""

    def __init__(self, policy: ChunkPolicy, strategy: ExecutionStrategy) -> None:
        self.policy = policy
        self.rtc = strategy == "rtc"
        self.warm_start = policy.config.warm_start_level > 0
        self.stream = StreamingSampler(policy) if strategy == "streaming" else None
        if self.stream is not None and self.warm_start:
            raise ValueError("streaming keeps its own buffer: it cannot also warm-start")
        self._last_step: int | None = None

    def new_episode(self) -> None:
        if self.stream is not None:
            self.stream.reset()
        self._last_step = None

    def chunk(
        self, obs: dict, noise: torch.Tensor, scheduler: ChunkScheduler, step: int, dt: float
    ) -> np.ndarray:
        """The chunk (horizon, A) for the observation at control step `step`."""
        cfg = self.policy.config
        if self.stream is not None:
            shift = cfg.horizon if self._last_step is None else step - self._last_step
            chunk = self.stream.next_chunk(obs, noise, shift)
        else:
            hints = plan_hints(
                scheduler, step * dt, dt, self.policy.now_index, cfg.horizon,
                rtc=self.rtc, warm_start=self.warm_start,
            )  # fmt: skip
            chunk = self.policy.predict_chunk(obs, noise, **hints.policy_kwargs(noise.device))
        self._last_step = step
        return chunk[0].cpu().numpy()


def _accepted_chunks(controller: Controller) -> int:
    stats = controller.scheduler.stats
    return stats.chunks_received - stats.chunks_out_of_order - stats.chunks_fully_stale


def _stack(
    history: deque[dict[str, np.ndarray]], keys: tuple[str, ...], device: torch.device
) -> dict:
    return {k: torch.from_numpy(np.stack([o[k] for o in history]))[None].to(device) for k in keys}


def evaluate(
    policy: ChunkPolicy,
    task: str,
    episodes: int,
    seed: int = 0,
    strategy: ExecutionStrategy = "receding",
    latency_ms: float = 0.0,
    safety: bool = True,
    sim_config: SimConfig | None = None,
    video_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run `episodes` seeded episodes (episode k uses seed `seed + k`); the same seed gives
    the same result.

    `latency_ms` delays every chunk's arrival by that much simulated time (the sim waits for
    nobody, as a real arm would not); while no chunk covers the present, the last action is
    held. With `safety` (the default, as on a robot) the controller's safety filter output is
    what reaches the arm; without, the scheduler's pick (for measuring what the filter
    changes). A policy with `warm_start_level` > 0 starts each chunk from the plan it takes
    over. For the first episode, `video_path` records the front camera as mp4 and `plot_path`
    draws the predicted chunks against the executed actions.
    """
    if strategy not in EXECUTION_STRATEGIES:
        raise ValueError(f"strategy must be one of {EXECUTION_STRATEGIES}, got {strategy!r}")
    if not latency_ms >= 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    cfg = policy.config
    maker = _ChunkMaker(policy, strategy)
    cameras = tuple(k.removeprefix("observation.images.") for k in cfg.camera_keys)
    if video_path is not None and "front" not in cameras:
        cameras += ("front",)
    env = (sim_config or SimConfig()).make_env(
        task, cameras=cameras, image_size=tuple(cfg.image_size), control_hz=cfg.fps
    )
    keys = cfg.state_keys + cfg.camera_keys
    dt = 1.0 / cfg.fps
    latency_s = latency_ms / 1000.0
    control = ControlConfig(
        rate_hz=cfg.fps,
        scheduler=SchedulerConfig(
            strategy="receding" if strategy == "streaming" else strategy,
            n_action_steps=1 if strategy == "ensemble" else cfg.n_action_steps,
            interpolate=False,
        ),
    )
    device = next(policy.parameters()).device
    policy.eval()
    joint_names = env.features["action"]["names"]
    limits = SafetyLimits.from_robot(env.robot)
    successes = interventions = 0
    lengths: list[int] = []
    chunk_seconds: list[float] = []
    jerk = JerkMeter(dt)
    denoiser = _CallCounter(policy.denoiser)
    # Sampling noise from its own seeded generator makes an evaluation repeatable as a whole.
    generator = torch.Generator().manual_seed(seed)
    noise_shape = (1, cfg.horizon, cfg.action_dim)
    current = policy.now_index
    trace = ChunkTrace(joint_names) if plot_path is not None else None
    video = None
    if video_path is not None:
        height, width = cfg.image_size
        video = EpisodeVideoEncoder(Path(video_path), int(cfg.fps), height, width, "libx264")
    try:
        bar = tqdm(range(episodes), desc=f"eval {task}", unit="ep", disable=not progress)
        for k in bar:
            obs, _ = env.reset(seed=seed + k)
            history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
            controller = Controller(joint_names, limits, control)
            maker.new_episode()
            in_flight: tuple[float, TimedChunk] | None = None  # (arrival time, chunk)
            hold = obs["observation.state"]  # unfiltered runs: stay here until a first chunk
            executed: list[np.ndarray] = []
            switches: list[int] = []  # steps where a chunk after the first took over
            accepted = 0
            success, length = False, 0
            while True:
                now = length * dt
                if in_flight is not None and now + 1e-9 >= in_flight[0]:
                    controller.add_chunk(in_flight[1], now)
                    in_flight = None
                if in_flight is None and controller.scheduler.needs_chunk(now):
                    start = time.perf_counter()
                    batch = _stack(history, keys, device)
                    noise = torch.randn(noise_shape, generator=generator).to(device)
                    chunk = maker.chunk(batch, noise, controller.scheduler, length, dt)
                    chunk_seconds.append(time.perf_counter() - start)
                    timed = TimedChunk(now, dt, chunk[current:])
                    # Simulated inference delay: the chunk reaches the controller `latency_s`
                    # after the observation it was computed from, its first actions stale.
                    if latency_s > 0:
                        in_flight = (now + latency_s, timed)
                    else:
                        controller.add_chunk(timed, now)
                    if trace is not None and k == 0:
                        trace.chunks.append((length - current, chunk))
                if video is not None and k == 0:
                    video.add(obs["observation.images.front"])
                taken = _accepted_chunks(controller)
                if taken > accepted > 0:
                    switches.append(length)
                accepted = taken
                verdict = controller.tick(obs["observation.state"], now)
                if safety:
                    interventions += bool(verdict.reasons)
                    action = verdict.command.astype(np.float32)
                else:
                    scheduled = controller.scheduler.action(now)
                    hold = hold if scheduled is None else scheduled
                    action = hold.astype(np.float32)
                executed.append(action)
                if trace is not None and k == 0:
                    trace.executed.append(action)
                obs, _, terminated, truncated, info = env.step(action)
                history.append(obs)
                length += 1
                success = bool(info["is_success"])
                if success or terminated or truncated:
                    break
            successes += success
            lengths.append(length)
            jerk.add_episode(executed, switches)
            bar.set_postfix(success=f"{successes}/{k + 1}")
            if video is not None and k == 0:
                video.finish()
    except BaseException:
        if video is not None:
            video.abort()
        raise
    finally:
        denoiser.close()
        env.close()
    if trace is not None:
        plot_chunks(trace, plot_path, title=f"{task}, seed {seed}: predicted vs executed")
    low, high = wilson_interval(successes, episodes)
    steps = sum(lengths)
    return EvalResult(
        task=task,
        strategy=strategy,
        latency_ms=latency_ms,
        safety=safety,
        episodes=episodes,
        successes=successes,
        success_rate=successes / episodes,
        ci95_low=low,
        ci95_high=high,
        mean_episode_length=float(np.mean(lengths)),
        chunks_per_step=len(chunk_seconds) / steps,
        denoiser_calls_per_step=denoiser.calls / steps,
        mean_chunk_ms=1000 * float(np.mean(chunk_seconds)),
        safety_interventions=interventions,
        **jerk.summary(),
    )
