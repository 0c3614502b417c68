"""Recording demonstrations from a teleop device into a LeRobot v3 dataset.

Today the device is the scripted expert of each sim task (the device CI can drive); keyboard,
gamepad and SpaceMouse devices plug into the same loop with the teleop issue.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from robot_policy.data import DatasetWriter
from robot_policy.sim import SimConfig, make_expert


@dataclass(frozen=True)
class CollectResult:
    dataset: str
    task: str
    attempted: int
    episodes: int  # saved; failed attempts are discarded unless keep_failed
    frames: int
    success_rate: float  # of the device over all attempts
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


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
    comes back from small deviations, the states a learned policy drifts into.
    """
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = (sim_config or SimConfig()).make_env(task, cameras=tuple(cameras))
    unwrapped = env.unwrapped
    expert = make_expert(env)
    successes = saved = frames = 0
    start = time.perf_counter()
    try:
        with DatasetWriter(
            out,
            fps=unwrapped.fps,
            features=unwrapped.features,
            robot_type=unwrapped.robot_type,
            video_codec=video_codec,
        ) as writer:
            bar = tqdm(range(episodes), desc=f"collect {task}", unit="ep", disable=not progress)
            for k in bar:
                obs, _ = env.reset(seed=seed + k)
                expert.reset()
                noise = np.random.default_rng(seed + k)
                first_success = None
                length = 0
                while True:
                    action = expert.act(obs)
                    writer.add_frame({**obs, "action": action}, task=unwrapped.task_description)
                    length += 1
                    executed = action.copy()
                    if action_noise:
                        executed[:7] += noise.normal(0.0, action_noise, 7).astype(np.float32)
                    obs, _, terminated, truncated, info = env.step(executed)
                    if first_success is None and info["is_success"]:
                        first_success = length
                    settled = first_success is not None and length - first_success >= settle_steps
                    if terminated or truncated or settled:
                        break
                success = bool(info["is_success"])
                successes += success
                if success or keep_failed:
                    writer.save_episode()
                    saved += 1
                    frames += length
                else:
                    writer.discard_episode()
                bar.set_postfix(success=f"{successes}/{k + 1}")
    finally:
        env.close()
    return CollectResult(
        dataset=str(out),
        task=task,
        attempted=episodes,
        episodes=saved,
        frames=frames,
        success_rate=successes / episodes,
        seconds=time.perf_counter() - start,
    )
