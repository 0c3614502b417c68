"""Closed-loop evaluation of a chunk policy in sim, without ROS, on simulated time.

Each episode runs the control loop every other path runs (`runtime.control_loop.ControlLoop`:
the same `Controller`, scheduler and safety filter as control_node, with the robot's safety
YAML), with the policy sampled in place (`eval.sampler`): by default at the policy's action
rate with the env as the arm (one setpoint per action, as collection executed the
demonstrations), or at control_node's rate with the graph's own arm (`eval.graph_arm`: what the
ROS graph executes, without its timing noise). Strategies come from `runtime.strategies`. An
episode succeeds the first time the task reports success. Book-keeping (video, chunk plot,
jerk) are observers beside the loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robot_policy.data.video import EpisodeVideoEncoder
from robot_policy.eval.chunk_plot import ChunkTrace, plot_chunks
from robot_policy.eval.graph_arm import GraphArm
from robot_policy.eval.jerk import JerkMeter
from robot_policy.eval.sampler import EnvArm, EpisodeArm, InPlaceSampler
from robot_policy.eval.success import success_fields
from robot_policy.policies import ChunkPolicy
from robot_policy.runtime.chunks import SchedulerConfig
from robot_policy.runtime.control_loop import ControlLoop, SimulatedClock, Tick
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.runtime.planner import InferenceSource
from robot_policy.runtime.strategies import get_strategy
from robot_policy.safety import SafetyConfig
from robot_policy.sim import SimConfig
from robot_policy.sim.arm import SimArm


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


class _CallCounter:
    """Counts a module's forward calls: denoiser evaluations, whatever the sampler does."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._count)

    def _count(self, *_: object) -> None:
        self.calls += 1

    def close(self) -> None:
        self._handle.remove()


class _Switches:
    """Observer: the steps where a chunk after the episode's first took over (for jerk)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.steps: list[int] = []
        self._accepted = 0

    def on_tick(self, tick: Tick) -> None:
        stats = self.controller.scheduler.stats
        taken = stats.chunks_received - stats.chunks_out_of_order - stats.chunks_fully_stale
        if taken > self._accepted > 0:
            self.steps.append(tick.index)
        self._accepted = taken


class _Video:
    """Observer: the front camera as the policy saw it at each tick."""

    def __init__(self, encoder: EpisodeVideoEncoder, arm: EpisodeArm, every: int) -> None:
        self.encoder, self.arm, self.every = encoder, arm, every
        self.encoder.add(arm.observation["observation.images.front"])

    def on_tick(self, tick: Tick) -> None:
        if not self.arm.done and (tick.index + 1) % self.every == 0:
            self.encoder.add(self.arm.observation["observation.images.front"])


def evaluate(
    policy: ChunkPolicy,
    task: str,
    episodes: int,
    seed: int = 0,
    strategy: str = "receding",
    latency_ms: float = 0.0,
    safety: bool = True,
    sim_config: SimConfig | None = None,
    video_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    progress: bool = True,
    safety_config: SafetyConfig | None = None,
    rate_hz: float | None = None,
) -> EvalResult:
    """Run `episodes` seeded episodes (episode k uses seed `seed + k`); the same seed gives
    the same result.

    `latency_ms` delays every chunk's arrival by that much simulated time (the sim waits for
    nobody, as a real arm would not); while no chunk covers the present, the last action is
    held. The safety filter is `safety_config` (default: the robot's `config/safety/` YAML, as
    control_node's); with `safety=False` the scheduler's pick reaches the arm instead (for
    measuring what the filter changes). A policy with `warm_start_level` > 0 starts each chunk
    from the plan it takes over. `rate_hz` (a multiple of the policy's fps; control_node's is
    100) runs the loop at that rate over `GraphArm`, as the graph does; None: once per action
    over the env. For the first episode, `video_path` records the front camera
    as mp4 and `plot_path` draws the predicted chunks against the executed actions.
    """
    chosen = get_strategy(strategy)
    if not latency_ms >= 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    cfg = policy.config
    # Sampling noise from its own seeded generator makes an evaluation repeatable as a whole.
    sampler = InPlaceSampler(policy, chosen, torch.Generator().manual_seed(seed))
    cameras = tuple(k.removeprefix("observation.images.") for k in cfg.camera_keys)
    if video_path is not None and "front" not in cameras:
        cameras += ("front",)
    sim_config = sim_config or SimConfig()
    every = _ticks_per_action(rate_hz, cfg.fps)
    sim = None
    if rate_hz is None:
        env = sim_config.make_env(
            task, cameras=cameras, image_size=tuple(cfg.image_size), control_hz=cfg.fps
        )
    else:
        sim = SimArm(task, cameras, tuple(cfg.image_size), sim_config)
        env = sim.env
    safety_config = safety_config or SafetyConfig.for_robot(env.robot.name)
    dt = 1.0 / cfg.fps
    period = dt / every
    control = ControlConfig(
        rate_hz=cfg.fps * every,
        scheduler=SchedulerConfig(
            strategy=chosen.stitching,
            n_action_steps=1 if chosen.replan_every_step else cfg.n_action_steps,
            interpolate=False,
        ),
    )
    policy.eval()
    joint_names = env.features["action"]["names"]
    successes = interventions = 0
    lengths: list[int] = []
    jerk = JerkMeter(period)
    denoiser = _CallCounter(policy.denoiser)
    trace = ChunkTrace(joint_names) if plot_path is not None else None
    video = None
    if video_path is not None:
        height, width = cfg.image_size
        video = EpisodeVideoEncoder(Path(video_path), int(cfg.fps), height, width, "libx264")
    try:
        bar = tqdm(range(episodes), desc=f"eval {task}", unit="ep", disable=not progress)
        for k in bar:
            if sim is None:
                obs, _ = env.reset(seed=seed + k)
                arm: EpisodeArm = EnvArm(env, obs, dt)
            else:
                limit = sim_config.episode_seconds[task]
                arm = GraphArm(sim, seed + k, period, int(cfg.fps), limit)
            controller = Controller(
                joint_names, safety_config.joint_limits(), control, safety=safety_config
            )
            source = InferenceSource(
                sampler,
                (*cfg.state_keys, *cfg.camera_keys),
                cfg.n_obs_steps,
                dt,
                policy.now_index,
                cfg.horizon,
                chosen,
                warm_start=cfg.warm_start_level > 0,
                latency_s=latency_ms / 1000.0,
            )
            switches = _Switches(controller)
            observers: list = [switches]
            first = k == 0
            sampler.new_episode(
                (lambda step, chunk: trace.chunks.append((step, chunk)))
                if first and trace is not None
                else None
            )
            if first and video is not None:
                observers.append(_Video(video, arm, every))
            loop = ControlLoop(controller, arm, source, observers, filtered=safety)
            loop.run(SimulatedClock(cfg.fps * every), until=lambda _, arm=arm: arm.done)
            if first and trace is not None:
                trace.executed.extend(arm.executed[::every])  # one per action
            if safety:
                interventions += controller.stats.interventions
            successes += arm.success
            lengths.append(arm.steps)
            jerk.add_episode(arm.executed, switches.steps)
            bar.set_postfix(success=f"{successes}/{k + 1}")
            if first and video is not None:
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
    steps = sum(lengths)
    return EvalResult(
        task=task,
        strategy=strategy,
        latency_ms=latency_ms,
        safety=safety,
        **success_fields(successes, episodes),
        mean_episode_length=float(np.mean(lengths)),
        chunks_per_step=len(sampler.seconds) / steps,
        denoiser_calls_per_step=denoiser.calls / steps,
        mean_chunk_ms=1000 * float(np.mean(sampler.seconds)),
        safety_interventions=interventions,
        **jerk.summary(),
    )


def _ticks_per_action(rate_hz: float | None, fps: float) -> int:
    if rate_hz is None:
        return 1
    every = rate_hz / fps
    if not (every >= 1 and abs(every - round(every)) < 1e-9):
        raise ValueError(
            f"rate_hz must be a whole multiple of the policy's {fps:g} fps, got {rate_hz}"
        )
    return int(round(every))
