"""`robot-policy bench loop`: the control tick at 100 Hz while the shipped policy infers beside it.

One iteration is what the control node does each period: take a finished chunk if there is one,
run `Controller.tick` (scheduler + composed safety filter) and send the command. Here the arm is
a PyBullet `PandaEnv` stepped at the policy's rate with the latest command, so the policy sees
real observations of the motion it causes. Inference runs either in an `InferenceWorker` thread
(sharing the interpreter, and so the GIL, with the loop) or in a child process at a lower
scheduling priority (`ProcessInference`, the default: on 2 shared cores it kept the loop's p99
jitter about half the thread's, see BENCHMARKS.md).

A deadline miss is a tick whose command was not out before the next tick was due, or a tick the
loop skipped because it started more than a period late.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from robot_policy.policies import load_policy
from robot_policy.pretrained import pretrained_path
from robot_policy.runtime.chunks import SchedulerConfig, TimedChunk
from robot_policy.runtime.controller import ControlConfig, Controller
from robot_policy.runtime.rate_loop import RateLoop
from robot_policy.runtime.worker import InferenceWorker
from robot_policy.safety import SafetyConfig
from robot_policy.sim import make_env

Worker = Literal["thread", "process"]
_HISTORY = 1000  # recent inference durations kept for the percentiles


class ProcessInference:
    """`InferenceWorker`'s surface (start, submit, poll, busy, stats, stop) with the policy in
    a child process, so the policy's Python never holds the control loop's GIL.

    One request is in flight at a time; a submission while busy waits as the pending one and a
    newer submission replaces it, as in the thread worker. The child is spawned, not forked, so
    it starts with a clean torch and its own thread count, and it lowers its own scheduling
    priority by `niceness`: when the two share a core, the control loop should win.
    """

    def __init__(
        self, checkpoint: str | Path, *, threads: int = 1, warmup: int = 2, niceness: int = 10
    ) -> None:
        self.checkpoint = str(checkpoint)
        self.threads = threads
        self.warmup = warmup
        self.niceness = niceness
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._in_flight = False
        self._pending: tuple[dict[str, np.ndarray], float] | None = None
        self._latency_s: deque[float] = deque(maxlen=_HISTORY)
        self._counts = {"submitted": 0, "replaced": 0, "completed": 0}
        self.dt = math.nan

    def __enter__(self) -> ProcessInference:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Spawn the child and return once it has loaded the policy and warmed up."""
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(self.checkpoint, self.threads, self.warmup, self.niceness, child),
            name="inference-process",
            daemon=True,
        )
        self._process.start()
        child.close()
        kind, value = self._conn.recv()
        if kind == "error":
            self.stop()
            raise RuntimeError(f"inference process failed to start: {value}")
        self.dt = value

    def submit(self, obs: Mapping[str, np.ndarray], stamp: float) -> None:
        request = ({k: np.asarray(v) for k, v in obs.items()}, float(stamp))
        self._counts["submitted"] += 1
        if self._in_flight:
            self._counts["replaced"] += self._pending is not None
            self._pending = request
        else:
            self._send(request)

    def poll(self) -> TimedChunk | None:
        """The chunk finished since the last poll, or None; never blocks on inference."""
        assert self._conn is not None
        if not self._conn.poll():
            return None
        kind, value = self._conn.recv()
        self._in_flight = False
        if self._pending is not None:
            self._send(self._pending)
            self._pending = None
        if kind == "error":
            raise RuntimeError(f"inference process failed: {value}")
        stamp, actions, seconds = value
        self._latency_s.append(seconds)
        self._counts["completed"] += 1
        return TimedChunk(stamp, self.dt, actions)

    @property
    def busy(self) -> bool:
        return self._in_flight or self._pending is not None

    def stats(self) -> dict[str, float | int]:
        ms = np.asarray(self._latency_s) * 1e3
        return {
            **self._counts,
            "latency_ms_p50": float(np.percentile(ms, 50)) if ms.size else math.nan,
            "latency_ms_p99": float(np.percentile(ms, 99)) if ms.size else math.nan,
        }

    def stop(self) -> None:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            self._conn.send(None)
            self._process.join(timeout=10)
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def _send(self, request: tuple[dict[str, np.ndarray], float]) -> None:
        assert self._conn is not None
        self._conn.send(request)
        self._in_flight = True


def _serve(checkpoint: str, threads: int, warmup: int, niceness: int, conn: Connection) -> None:
    """The child's loop: (observation history, stamp) in, (stamp, actions, seconds) out."""
    try:
        os.nice(niceness)
        torch.set_num_threads(threads)
        policy = load_policy(checkpoint).eval()
        for _ in range(warmup):
            policy.predict_chunk(policy.blank_observation())
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", repr(exc)))
        return
    conn.send(("ready", 1.0 / policy.config.fps))
    while (request := conn.recv()) is not None:
        obs, stamp = request
        start = time.perf_counter()
        try:
            batch = {k: torch.from_numpy(v)[None] for k, v in obs.items()}
            actions = policy.predict_chunk(batch)[0, policy.now_index :].numpy()
            conn.send(("chunk", (stamp, actions, time.perf_counter() - start)))
        except Exception as exc:
            conn.send(("error", f"stamp {stamp}: {exc!r}"))


def run(
    seconds: float = 60.0,
    rate_hz: float = 100.0,
    worker: Worker = "process",
    threads: int = 1,
    checkpoint: str | Path | None = None,
    task: str = "push",
    safety: SafetyConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the loop for `seconds` and report its timing, the inference latency and what the
    safety filter did. `safety` defaults to config/safety/panda.yaml's values."""
    if worker not in ("thread", "process"):
        raise ValueError(f"worker must be 'thread' or 'process', got {worker!r}")
    checkpoint = checkpoint or pretrained_path()
    policy = load_policy(checkpoint)
    cfg = policy.config
    sim_every = rate_hz / cfg.fps
    if sim_every != round(sim_every):
        raise ValueError(f"rate_hz must be a multiple of the policy's {cfg.fps} Hz")
    cameras = tuple(k.removeprefix("observation.images.") for k in cfg.camera_keys)
    env = make_env(task, cameras=cameras, image_size=tuple(cfg.image_size), control_hz=cfg.fps)
    safety = safety or SafetyConfig()
    control = ControlConfig(
        rate_hz=rate_hz,
        scheduler=SchedulerConfig(n_action_steps=cfg.n_action_steps, interpolate=True),
    )
    names = env.features["action"]["names"]
    controller = Controller(names, safety.joint_limits(), control, safety=safety)
    inference = (
        InferenceWorker(policy, threads=threads)
        if worker == "thread"
        else ProcessInference(checkpoint, threads=threads)
    )
    keys = (*cfg.state_keys, *cfg.camera_keys)
    obs, _ = env.reset(seed=seed)
    history = deque([obs] * cfg.n_obs_steps, maxlen=cfg.n_obs_steps)
    state = obs["observation.state"].astype(np.float64)
    loop = RateLoop(rate_hz)
    clock = time.monotonic
    tick_s, work_s, wake_s = [], [], []
    load_before = os.getloadavg()[0]
    bar = tqdm(total=round(seconds), unit="s", desc=f"bench loop ({worker})", disable=not progress)
    try:
        with inference:
            start = loop.wait()
            now, k = start, 0
            while now - start < seconds:
                if k:
                    now = loop.wait()
                woke = clock()
                t = now - start
                chunk = inference.poll()
                if chunk is not None:
                    controller.add_chunk(chunk, t)
                begin, begin_cpu = clock(), time.thread_time()
                result = controller.tick(state, t)
                tick_s.append((clock() - begin, time.thread_time() - begin_cpu))
                if k % round(sim_every) == 0:
                    obs, *_ = env.step(result.command.astype(np.float32))
                    history.append(obs)
                    if controller.scheduler.needs_chunk(t) and not inference.busy:
                        inference.submit(
                            {key: np.stack([o[key] for o in history]) for key in keys}, t
                        )
                done = clock()
                work_s.append(done - woke)
                wake_s.append(woke - now)
                if k % round(rate_hz) == 0:
                    bar.update(1)
                k += 1
            inference_stats = inference.stats()
    finally:
        bar.close()
        env.close()
    timing = loop.stats()
    period = 1.0 / rate_hz
    late = int(np.sum((np.asarray(wake_s) + np.asarray(work_s)) > period))
    (tick_us, tick_cpu_us), work_ms = np.asarray(tick_s).T * 1e6, np.asarray(work_s) * 1e3
    return {
        "worker": worker,
        "seconds": seconds,
        "rate_hz": rate_hz,
        "loop_hz": timing["rate_hz_measured"],
        "ticks": timing["ticks"],
        "deadline_misses": late + timing["skipped_ticks"],
        "skipped_ticks": timing["skipped_ticks"],
        "jitter_ms_p50": timing["jitter_ms_p50"],
        "jitter_ms_p99": timing["jitter_ms_p99"],
        "jitter_ms_max": float(np.max(wake_s)) * 1e3,
        "tick_us_p50": float(np.percentile(tick_us, 50)),
        "tick_us_p99": float(np.percentile(tick_us, 99)),
        "tick_cpu_us_p50": float(np.percentile(tick_cpu_us, 50)),
        "tick_cpu_us_p99": float(np.percentile(tick_cpu_us, 99)),
        "work_ms_p99": float(np.percentile(work_ms, 99)),
        "inference_ms_p50": inference_stats["latency_ms_p50"],
        "inference_ms_p99": inference_stats["latency_ms_p99"],
        "chunks": inference_stats["completed"],
        "ticks_without_chunk": controller.stats.ticks_without_chunk,
        "safety_interventions": controller.stats.interventions,
        "safety_reasons": dict(controller.stats.reasons),
        "threads": threads,
        "cpus": os.cpu_count(),
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg()[0],
    }
