"""Closed-loop evaluation of a chunk policy in sim, without ROS.

Each predicted chunk is placed in (simulated) time and handed to the same `ChunkScheduler` the
control loop uses. `receding` (Diffusion Policy): predict `horizon` actions from the last
`n_obs_steps` observations, execute `n_action_steps` of them, re-plan. `ensemble` (ACT):
re-plan every step and average all chunks that cover the current step. An episode succeeds
the first time the task reports success.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robot_policy.data.video import EpisodeVideoEncoder
from robot_policy.policies import ChunkPolicy
from robot_policy.runtime.chunk_plot import ChunkTrace, plot_chunks
from robot_policy.runtime.chunks import ChunkScheduler, SchedulerConfig, Strategy, TimedChunk
from robot_policy.safety import SafetyFilter, SafetyLimits
from robot_policy.sim import SimConfig


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
    mean_chunk_ms: float
    safety_interventions: int  # control ticks whose command the safety filter changed

    def as_dict(self) -> dict:
        return asdict(self)


def _stack(
    history: deque[dict[str, np.ndarray]], keys: tuple[str, ...], device: torch.device
) -> dict:
    return {k: torch.from_numpy(np.stack([o[k] for o in history]))[None].to(device) for k in keys}


def evaluate(
    policy: ChunkPolicy,
    task: str,
    episodes: int,
    seed: int = 0,
    strategy: Strategy = "receding",
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
    held. With `safety` (the default, as on a robot) every action passes the joint-space
    safety filter before it reaches the arm; the filter's watchdog is fed whenever a chunk
    covers the present. For the first episode, `video_path` records the front camera as mp4
    and `plot_path` draws the predicted chunks against the executed actions.
    """
    cfg = policy.config
    cameras = tuple(k.removeprefix("observation.images.") for k in cfg.camera_keys)
    if video_path is not None and "front" not in cameras:
        cameras += ("front",)
    env = (sim_config or SimConfig()).make_env(
        task, cameras=cameras, image_size=tuple(cfg.image_size), control_hz=cfg.fps
    )
    keys = cfg.state_keys + cfg.camera_keys
    dt = 1.0 / cfg.fps
    if not latency_ms >= 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    latency_s = latency_ms / 1000.0
    schedule = SchedulerConfig(
        strategy=strategy, n_action_steps=cfg.n_action_steps if strategy == "receding" else 1
    )
    device = next(policy.parameters()).device
    policy.eval()
    joint_names = env.features["action"]["names"]
    limits = SafetyLimits.from_robot(env.robot)
    successes = interventions = 0
    lengths: list[int] = []
    chunk_seconds: list[float] = []
    # Sampling noise from its own seeded generator makes an evaluation repeatable as a whole.
    generator = torch.Generator().manual_seed(seed)
    noise_shape = (1, cfg.horizon, cfg.action_dim)
    trace = ChunkTrace(env.features["action"]["names"]) if plot_path is not None else None
    video = None
    if video_path is not None:
        height, width = cfg.image_size
        video = EpisodeVideoEncoder(Path(video_path), int(cfg.fps), height, width, "libx264")
    try:
        bar = tqdm(range(episodes), desc=f"eval {task}", unit="ep", disable=not progress)
        for k in bar:
            obs, _ = env.reset(seed=seed + k)
            history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
            scheduler = ChunkScheduler(schedule)
            guard = SafetyFilter(limits, joint_names, dt) if safety else None
            in_flight: tuple[float, TimedChunk] | None = None  # (arrival time, chunk)
            hold = obs["observation.state"]  # until a first chunk arrives: stay where we are
            success, length = False, 0
            while True:
                now = length * dt
                if in_flight is not None and now + 1e-9 >= in_flight[0]:
                    scheduler.add(in_flight[1], now)
                    in_flight = None
                if in_flight is None and scheduler.needs_chunk(now):
                    start = time.perf_counter()
                    noise = torch.randn(noise_shape, generator=generator).to(device)
                    chunk = policy.predict_chunk(_stack(history, keys, device), noise)
                    chunk = chunk[0].cpu().numpy()
                    chunk_seconds.append(time.perf_counter() - start)
                    current = policy.now_index
                    timed = TimedChunk(now, dt, chunk[current:])
                    # Simulated inference delay: the chunk reaches the scheduler `latency_s`
                    # after the observation it was computed from, its first actions stale.
                    if latency_s > 0:
                        in_flight = (now + latency_s, timed)
                    else:
                        scheduler.add(timed, now)
                    if trace is not None and k == 0:
                        trace.chunks.append((length - current, chunk))
                if video is not None and k == 0:
                    video.add(obs["observation.images.front"])
                scheduled = scheduler.action(now)
                if scheduled is not None:
                    hold = scheduled
                action = hold.astype(np.float32)
                if guard is not None:
                    if scheduled is not None:
                        guard.feed(now)
                    verdict = guard.step(action, obs["observation.state"], now)
                    interventions += bool(verdict.reasons)
                    action = verdict.command.astype(np.float32)
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
            bar.set_postfix(success=f"{successes}/{k + 1}")
            if video is not None and k == 0:
                video.finish()
    except BaseException:
        if video is not None:
            video.abort()
        raise
    finally:
        env.close()
    if trace is not None:
        plot_chunks(trace, plot_path, title=f"{task}, seed {seed}: predicted vs executed")
    low, high = wilson_interval(successes, episodes)
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
        chunks_per_step=len(chunk_seconds) / sum(lengths),
        mean_chunk_ms=1000 * float(np.mean(chunk_seconds)),
        safety_interventions=interventions,
    )
