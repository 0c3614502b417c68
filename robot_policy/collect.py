"""Recording demonstrations into a LeRobot v3 dataset, without ROS.

Two loops. `collect_scripted` records each task's scripted expert directly in joint space (fast,
seeded, the reference datasets). `collect_teleop` records a teleop device the way a person
drives the arm: device twist -> `TwistIK` -> `SafetyFilter` -> sim, in real time, with the
operator starting, saving and discarding episodes from the device. Both send the arm only what
the robot's default safety configuration (`SafetyConfig.for_robot`, the filter control_node and
`eval` run) lets through.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from robot_policy.data import DatasetWriter
from robot_policy.features import STATE_KEY
from robot_policy.safety import SafetyConfig, SafetyFilter
from robot_policy.sim import SimConfig, make_expert
from robot_policy.teleop.device import Event, TeleopDevice
from robot_policy.teleop.ik import TwistIK


@dataclass(frozen=True)
class CollectResult:
    dataset: str
    task: str
    attempted: int
    episodes: int  # saved; failed attempts are discarded unless keep_failed
    frames: int
    successes: int  # of the device, over all attempts
    seconds: float

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempted if self.attempted else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "success_rate": self.success_rate}


@dataclass
class Tally:
    """A recording session's counts as it runs (`collect_scripted`, `collect_teleop` and the
    ROS graph's `collect_ros`); `result()` is its CollectResult, timed from the tally's start."""

    dataset: str
    task: str
    attempted: int = 0
    episodes: int = 0
    frames: int = 0
    successes: int = 0
    started: float = field(default_factory=time.perf_counter)

    def attempt(self, success: bool, saved_frames: int | None = None) -> None:
        """Count one attempt, and its episode when it was saved (with `saved_frames` frames)."""
        self.attempted += 1
        self.successes += success
        if saved_frames is not None:
            self.episodes += 1
            self.frames += saved_frames

    def finish_episode(self, writer: DatasetWriter, success: bool, keep: bool) -> None:
        """Count the attempt recorded in `writer`'s open episode, saving it if `keep` and
        discarding it otherwise."""
        length = writer.episode_frames
        if keep:
            writer.save_episode()
        else:
            writer.discard_episode()
        self.attempt(success, length if keep else None)

    def result(self) -> CollectResult:
        counts = asdict(self)  # the result's fields, by the same names, and the start time
        seconds = time.perf_counter() - counts.pop("started")
        return CollectResult(**counts, seconds=seconds)


def collect_scripted(
    task: str,
    episodes: int,
    out: str | Path,
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    settle_steps: int = 5,
    keep_failed: bool = False,
    video_codec: str = "libsvtav1",
    sim_config: SimConfig | None = None,
    action_noise: float = 0.0,
    progress: bool = True,
) -> CollectResult:
    """Run `episodes` seeded expert episodes and save them.

    Episode k uses seed `seed + k`, so a dataset can be regenerated exactly. An episode ends
    `settle_steps` control steps after the task first reports success (so demonstrations show
    the goal being held, not only touched) or when the env truncates. Failed attempts are
    dropped by default: imitation learning copies whatever it is shown.

    `action_noise` (rad, std) perturbs the arm joint targets that are *executed* while the
    expert's clean action is *recorded* (DART): the demonstrations then show how the expert
    comes back from small deviations, the states a learned policy drifts into. What is executed
    passes the robot's safety filter first, as a learned policy's targets will at run time.
    """
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = (sim_config or SimConfig()).make_env(task, cameras=tuple(cameras))
    unwrapped = env.unwrapped
    expert = make_expert(env)
    safety = SafetyConfig.for_robot(unwrapped.robot.name)
    joint_names, dt = unwrapped.features["action"]["names"], 1.0 / unwrapped.fps
    tally = Tally(str(out), task)
    try:
        with _dataset_for(env, out, video_codec) as writer:
            bar = tqdm(range(episodes), desc=f"collect {task}", unit="ep", disable=not progress)
            for k in bar:
                obs, _ = env.reset(seed=seed + k)
                expert.reset()
                guard = safety.build_filter(joint_names, dt)
                noise = np.random.default_rng(seed + k)
                first_success = None
                length = 0
                while True:
                    action = expert.act(obs)
                    writer.add_frame({**obs, "action": action}, task=unwrapped.task_description)
                    length += 1
                    target = action.copy()
                    if action_noise:
                        joints = len(unwrapped.robot.arm)
                        target[:joints] += noise.normal(0, action_noise, joints).astype(np.float32)
                    now = (length - 1) * dt
                    guard.feed(now)
                    executed = guard.step(target, obs[STATE_KEY], now).command
                    obs, _, terminated, truncated, info = env.step(executed.astype(np.float32))
                    if first_success is None and info["is_success"]:
                        first_success = length
                    settled = first_success is not None and length - first_success >= settle_steps
                    if terminated or truncated or settled:
                        break
                success = bool(info["is_success"])
                tally.finish_episode(writer, success, keep=success or keep_failed)
                bar.set_postfix(success=f"{tally.successes}/{k + 1}")
    finally:
        env.close()
    return tally.result()


def collect_teleop(
    task: str,
    episodes: int,
    out: str | Path,
    open_device: Callable[[gym.Env], TeleopDevice],
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    keep_failed: bool = False,
    video_codec: str = "libsvtav1",
    sim_config: SimConfig | None = None,
    max_seconds: float | None = None,
    realtime: bool = True,
    status: TextIO | None = sys.stderr,
) -> CollectResult:
    """Let an operator record up to `episodes` episodes with the device `open_device(env)`.

    Each episode: the env resets (attempt k uses seed `seed + k`), the arm holds until the
    operator presses record, every tick from then on is recorded, and it ends when the operator
    presses record again (saved if the task is solved or `keep_failed`), presses discard, or
    the episode reaches `max_seconds` (default: the task's episode length). Idle time before
    record counts toward that limit too; when it runs out the same layout starts over. Quit
    (or Ctrl-C) ends the session; saved episodes stay saved. The recorded action is the
    command the safety filter let through, i.e. what the arm was actually sent. `realtime`
    paces the loop at the env's rate; without it, the loop runs as fast as it can (scripted
    devices, tests). Prompts go to `status`.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    config = sim_config or SimConfig()
    if max_seconds is not None:
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        seconds = config.episode_seconds | {task: float(max_seconds)}
        config = dataclasses.replace(config, episode_seconds=seconds)
    env = config.make_env(task, cameras=tuple(cameras))
    unwrapped = env.unwrapped
    robot, dt = unwrapped.robot, 1.0 / unwrapped.fps
    joint_names = unwrapped.features["action"]["names"]
    safety = SafetyConfig.for_robot(robot.name)

    def say(message: str) -> None:
        if status is not None:
            print(message, file=status, flush=True)

    tally = Tally(str(out), task)
    ik = TwistIK(robot, dt)
    try:
        with (
            open_device(env) as device,
            _dataset_for(env, out, video_codec) as writer,
        ):
            say(device.help)
            ended = None
            while tally.attempted < episodes and ended != "quit":
                say(f"episode {tally.attempted + 1}/{episodes}: press record to start")
                obs, _ = env.reset(seed=seed + tally.attempted)
                device.reset()
                guard = safety.build_filter(joint_names, dt)
                ended, success = _operate(env, obs, device, ik, guard, writer, realtime, say)
                length = writer.episode_frames
                if not length:
                    if ended == "time limit":
                        say("time limit reached before recording; starting over")
                    continue
                keep = ended in ("stopped", "time limit") and (success or keep_failed)
                tally.finish_episode(writer, success, keep)
                verdict = "saved" if keep else "discarded"
                outcome = "solved" if success else "not solved"
                say(
                    f"episode {tally.attempted}: {ended} after {length} frames, {outcome}, "
                    f"{verdict}"
                )
    finally:
        env.close()
    return tally.result()


def _dataset_for(env: gym.Env, out: str | Path, video_codec: str) -> DatasetWriter:
    """A writer for the dataset at `out` with `env`'s rate, features and robot."""
    unwrapped = env.unwrapped
    return DatasetWriter(
        out,
        fps=unwrapped.fps,
        features=unwrapped.features,
        robot_type=unwrapped.robot_type,
        video_codec=video_codec,
    )


def _operate(
    env: gym.Env,
    obs: dict[str, np.ndarray],
    device: TeleopDevice,
    ik: TwistIK,
    guard: SafetyFilter,
    writer: DatasetWriter,
    realtime: bool,
    say: Callable[[str], None],
) -> tuple[str, bool]:
    """Operate one episode from `obs`, just after a reset: returns why it ended ("stopped",
    "discarded", "time limit" or "quit") and whether the task was solved then.

    Frames from the tick record is pressed on are left in `writer`'s open episode, for the
    caller to save or discard.
    """
    unwrapped = env.unwrapped
    dt, arm = 1.0 / unwrapped.fps, slice(0, len(unwrapped.robot.arm))
    ik.reset(obs[STATE_KEY][arm])
    recording, success = False, False
    tick, deadline = 0, time.monotonic()
    try:
        while True:
            command = device.read()
            if Event.QUIT in command.events:
                return "quit", success
            if Event.DISCARD in command.events and recording:
                return "discarded", success
            if Event.RECORD in command.events:
                if recording:
                    return "stopped", success
                recording = True
                say("recording")
            now = tick * dt
            guard.feed(now)
            target = ik.step(command, obs[STATE_KEY][arm])
            action = guard.step(target, obs[STATE_KEY], now).command.astype(np.float32)
            if recording:
                writer.add_frame({**obs, "action": action}, task=unwrapped.task_description)
            obs, _, terminated, truncated, info = env.step(action)
            success = bool(info["is_success"])
            tick += 1
            if terminated or truncated:
                return "time limit", success
            if realtime:
                deadline += dt
                time.sleep(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        return "quit", success
