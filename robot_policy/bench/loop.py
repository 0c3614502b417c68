"""`robot-policy bench loop`: the control loop at 100 Hz while the shipped policy infers beside it.

The loop is `runtime.control_loop.ControlLoop`, the one control_node runs, on a `RateLoop`
whose thread runs at SCHED_FIFO when permitted (`realtime_priority`), as ros2_control's update
thread does. The arm is a PyBullet env in a child process (`ArmProcess`), stepped at the
policy's rate with the latest filtered command, so the policy sees real observations of the
motion it causes and the loop's thread does only what a control node's does. The policy is
prepared by `policies.inference` with the same settings policy_node uses, and infers either in
an `InferenceWorker` thread (sharing the interpreter, and so the GIL, with the loop) or in a
child process at a lower priority (`ProcessInference`, the default).

A deadline miss is a tick whose command was not out before the next tick was due, or a tick the
loop skipped because it started more than a period late. A `StallWitness` at the loop's
priority tells the misses that happened while the whole machine stood still from the loop's own.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from robot_policy.features import STATE_KEY
from robot_policy.policies.inference import InferenceSettings, prepare_policy
from robot_policy.pretrained import pretrained_path
from robot_policy.runtime.child import ChildServer, yield_to_the_loop
from robot_policy.runtime.chunks import SchedulerConfig
from robot_policy.runtime.control_loop import ControlLoop, Observed, Tick
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.runtime.planner import InferenceSource
from robot_policy.runtime.process_worker import ProcessInference
from robot_policy.runtime.rate_loop import RateLoop, realtime_priority
from robot_policy.runtime.stall_witness import Stall, StallWitness, overlaps
from robot_policy.runtime.strategies import get_strategy
from robot_policy.runtime.worker import InferenceWorker
from robot_policy.safety import SafetyConfig
from robot_policy.sim import make_env

Worker = Literal["thread", "process"]


class ArmProcess:
    """The simulated arm in a child process, standing in for a robot beside the control loop.

    A robot's joint states arrive from outside the control process; a PyBullet step in the
    loop's own thread (~4-5 ms every tenth tick, holding the GIL) would instead be charged to
    the loop as late wake-ups. As the loop's `Arm`: `send` hands the child every `every`-th
    filtered command, which it executes for one policy step; `observe` returns the newest
    observation and the monotonic time it was taken (the same clock across processes on Linux).
    """

    def __init__(
        self,
        task: str,
        cameras: tuple[str, ...],
        image_size: tuple[int, int],
        control_hz: float,
        seed: int,
        every: int,
    ) -> None:
        self._child = ChildServer(
            "arm-process", _arm_setup, task, cameras, image_size, control_hz, seed
        )
        self.every = every
        self._sent = 0
        self._outstanding = 0
        self.step_s: list[float] = []

    def __enter__(self) -> Observed:
        """Spawn the arm; its first measurement after the reset."""
        taken, obs = self._child.start()
        return Observed(taken, obs[STATE_KEY], obs)

    def __exit__(self, *exc: object) -> None:
        self._child.stop()

    def send(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        if self._sent % self.every == 0:
            self._child.send(np.asarray(command, dtype=np.float32))
            self._outstanding += 1
        self._sent += 1

    def observe(self) -> Observed | None:
        """The newest observation finished since the last call, or None; never blocks."""
        newest = None
        while self._outstanding and self._child.ready_reply():
            taken, obs, seconds = self._child.recv()
            self._outstanding -= 1
            self.step_s.append(seconds)
            newest = Observed(taken, obs[STATE_KEY], obs)
        return newest


def _arm_setup(
    task: str, cameras: tuple[str, ...], image_size: tuple[int, int], control_hz: float, seed: int
) -> tuple[tuple[float, dict[str, np.ndarray]], Callable[[np.ndarray], tuple]]:
    """In the child: build and reset the env; answer a command with (time, obs, step seconds)."""
    yield_to_the_loop()
    env = make_env(task, cameras=cameras, image_size=image_size, control_hz=control_hz)
    obs, _ = env.reset(seed=seed)

    def step(command: np.ndarray) -> tuple[float, dict[str, np.ndarray], float]:
        start = time.perf_counter()
        obs, *_ = env.step(command)
        return time.monotonic(), obs, time.perf_counter() - start

    return (time.monotonic(), obs), step


class _Timing:
    """Observer: per-tick timing rows, and the progress bar once a second."""

    def __init__(self, per_second: int, bar: tqdm) -> None:
        self.rows: list[tuple[float, ...]] = []
        self.per_second, self.bar = per_second, bar

    def on_tick(self, tick: Tick) -> None:
        self.rows.append(
            (tick.now, tick.woke - tick.now, tick.work_s, tick.work_cpu_s, tick.tick_s,
             tick.tick_cpu_s)
        )  # fmt: skip
        if tick.index % self.per_second == 0:
            self.bar.update(1)


def run(
    seconds: float = 60.0,
    rate_hz: float = 100.0,
    worker: Worker = "process",
    inference: InferenceSettings | None = None,
    checkpoint: str | Path | None = None,
    task: str = "push",
    safety: SafetyConfig | None = None,
    seed: int = 0,
    thread_priority: int = 50,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the loop for `seconds` and report its timing, the inference latency and what the
    safety filter did. `inference`: policy_node's settings by default (`policies.inference`);
    `safety` defaults to the robot's safety YAML. `thread_priority`: SCHED_FIFO priority of the
    loop's thread (`realtime_priority`; 0: none); a `StallWitness` at the same priority tells
    the machine's stalls from the loop's misses.
    """
    if worker not in ("thread", "process"):
        raise ValueError(f"worker must be 'thread' or 'process', got {worker!r}")
    checkpoint = checkpoint or pretrained_path()
    policy, settings = prepare_policy(checkpoint, inference)
    cfg = policy.config
    sim_every = rate_hz / cfg.fps
    if sim_every != round(sim_every):
        raise ValueError(f"rate_hz must be a multiple of the policy's {cfg.fps} Hz")
    cameras = tuple(k.removeprefix("observation.images.") for k in cfg.camera_keys)
    safety = safety or SafetyConfig.for_robot()
    control = ControlConfig(
        rate_hz=rate_hz,
        scheduler=SchedulerConfig(n_action_steps=cfg.n_action_steps, interpolate=True),
    )
    controller = Controller(
        safety.description.command_names, safety.joint_limits(), control, safety=safety
    )
    infer = (
        InferenceWorker(policy, threads=settings.threads)
        if worker == "thread"
        else ProcessInference(checkpoint, settings)
    )
    source = InferenceSource(
        infer,
        (*cfg.state_keys, *cfg.camera_keys),
        cfg.n_obs_steps,
        1.0 / cfg.fps,
        policy.now_index,
        cfg.horizon,
        get_strategy("receding"),
    )
    arm = ArmProcess(task, cameras, tuple(cfg.image_size), cfg.fps, seed, round(sim_every))
    clock = RateLoop(rate_hz)
    load_before = os.getloadavg()[0]
    bar = tqdm(total=round(seconds), unit="s", desc=f"bench loop ({worker})", disable=not progress)
    timing = _Timing(round(rate_hz), bar)
    loop = ControlLoop(controller, arm, source, [timing])
    try:
        with infer, arm as first, StallWitness(thread_priority) as witness:
            with realtime_priority(thread_priority) as not_realtime:
                loop.activate(first, clock.period)
                start = clock.wait()
                loop.step(start, clock.period)
                loop.run(clock, until=lambda tick: tick.now - start >= seconds)
            stalls = witness.stalls()
            inference_stats = infer.stats()
    finally:
        bar.close()
    loop_stats = clock.stats()
    ticks = _Ticks(*np.asarray(timing.rows).T)
    misses = _misses(ticks, clock.period, stalls)
    return {
        "worker": worker,
        "seconds": seconds,
        "rate_hz": rate_hz,
        "loop_hz": loop_stats["rate_hz_measured"],
        "ticks": loop_stats["ticks"],
        **misses,
        "jitter_ms_p50": loop_stats["jitter_ms_p50"],
        "jitter_ms_p99": loop_stats["jitter_ms_p99"],
        "jitter_ms_max": float(np.max(ticks.wake)) * 1e3,
        "tick_us_p50": float(np.percentile(ticks.tick, 50)) * 1e6,
        "tick_us_p99": float(np.percentile(ticks.tick, 99)) * 1e6,
        "tick_cpu_us_p50": float(np.percentile(ticks.tick_cpu, 50)) * 1e6,
        "tick_cpu_us_p99": float(np.percentile(ticks.tick_cpu, 99)) * 1e6,
        "work_ms_p99": float(np.percentile(ticks.work, 99)) * 1e3,
        "inference_ms_p50": inference_stats["latency_ms_p50"],
        "inference_ms_p99": inference_stats["latency_ms_p99"],
        "arm_step_ms_p50": float(np.percentile(arm.step_s, 50)) * 1e3 if arm.step_s else math.nan,
        "chunks": inference_stats["completed"],
        "ticks_without_chunk": controller.stats.ticks_without_chunk,
        "safety_interventions": controller.stats.interventions,
        "safety_reasons": dict(controller.stats.reasons),
        "device": settings.device,
        "precision": settings.precision,
        "threads": settings.threads,
        "inference_steps": settings.inference_steps or cfg.num_inference_steps,
        "thread_priority": thread_priority,
        "realtime": not_realtime is None,
        "not_realtime_because": not_realtime,
        "witness_realtime": witness.not_realtime is None,
        "cpus": os.cpu_count(),
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg()[0],
    }


@dataclass
class _Ticks:
    """Per tick, in seconds: scheduled time (monotonic), wake-up lateness, work from waking to
    the command sent (wall and the thread's CPU time: a gap between them is time the thread
    was kept off the CPU), and the controller tick's wall and CPU time."""

    scheduled: np.ndarray
    wake: np.ndarray
    work: np.ndarray
    work_cpu: np.ndarray
    tick: np.ndarray
    tick_cpu: np.ndarray


def _misses(ticks: _Ticks, period: float, stalls: list[Stall]) -> dict[str, Any]:
    """Deadline misses — a tick whose command went out after the next tick was due, and each
    tick skipped after it — split by whether the witness saw the machine stall meanwhile."""
    skipped = np.append(np.rint(np.diff(ticks.scheduled) / period).astype(int) - 1, 0)
    lateness = ticks.wake + ticks.work
    missed = (lateness > period).astype(int) + skipped
    late = []
    in_stalls = 0
    for i in np.flatnonzero(missed):
        begin = ticks.scheduled[i]
        stalled = overlaps(stalls, begin, begin + lateness[i] + skipped[i] * period)
        in_stalls += missed[i] if stalled else 0
        late.append(
            {
                "t_s": round(float(begin - ticks.scheduled[0]), 3),
                "wake_ms": round(float(ticks.wake[i]) * 1e3, 2),
                "work_ms": round(float(ticks.work[i]) * 1e3, 2),
                "work_cpu_ms": round(float(ticks.work_cpu[i]) * 1e3, 2),
                "skipped": int(skipped[i]),
                "machine_stall": stalled,
            }
        )
    total = int(missed.sum())
    return {
        "deadline_misses": total,
        "deadline_misses_own": total - int(in_stalls),
        "deadline_misses_in_machine_stalls": int(in_stalls),
        "skipped_ticks": int(skipped.sum()),
        "machine_stalls": len(stalls),
        "machine_stall_ms_max": max((s for _, s in stalls), default=0.0) * 1e3,
        "late_ticks": late[:20],
    }
