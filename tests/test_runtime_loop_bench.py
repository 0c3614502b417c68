"""`bench loop`: the control loop with inference beside it, in a thread or a child process."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from conftest import wait_for

from robot_policy.bench import loop as loop_bench
from robot_policy.policies.inference import InferenceSettings, prepare_policy
from robot_policy.pretrained import pretrained_path
from robot_policy.runtime.process_worker import ProcessInference
from robot_policy.runtime.stall_witness import StallWitness, overlaps
from robot_policy.runtime.worker import InferenceWorker


def test_the_process_worker_answers_like_the_thread_worker():
    policy, _ = prepare_policy(pretrained_path())
    obs = {k: v[0].numpy() for k, v in policy.blank_observation().items()}
    with InferenceWorker(policy) as thread, ProcessInference(pretrained_path()) as proc:
        thread.submit(obs, 1.5)
        proc.submit(obs, 1.5)
        proc.submit(obs, 2.5)  # waits as the pending request while the first one runs
        assert proc.busy
        chunks = [
            wait_for(thread.poll, 60, "thread chunk"),
            wait_for(proc.poll, 60, "process chunk 1"),
            wait_for(proc.poll, 60, "process chunk 2"),
        ]
        assert not proc.busy
    assert [c.stamp for c in chunks] == [1.5, 1.5, 2.5]
    assert chunks[0].actions.shape == chunks[1].actions.shape == chunks[2].actions.shape
    assert chunks[0].dt == chunks[1].dt == 1.0 / policy.config.fps
    assert proc.stats()["completed"] == 2 and proc.stats()["latency_ms_p50"] > 0


def test_the_process_worker_takes_its_priority_and_pads_to_the_latency_floor():
    obs = {
        k: v[0].numpy() for k, v in prepare_policy(pretrained_path())[0].blank_observation().items()
    }
    with ProcessInference(pretrained_path(), priority=40, latency_floor=0.3) as proc:
        if proc.not_realtime is not None:  # refused (no CAP_SYS_NICE): it says why
            assert "40" in proc.not_realtime
        sent = time.monotonic()  # before: a FIFO child can run ahead of this process at once
        proc.submit(obs, 1.0)
        assert proc.poll(timeout=0.05) is None  # a timeout shorter than the floor: nothing yet
        chunk = proc.poll(timeout=30.0)  # blocks until the answer is there
        assert chunk is not None and chunk.stamp == 1.0
        assert time.monotonic() - sent >= 0.3
        assert proc.stats()["latency_ms_p50"] >= 300.0  # the floor is what callers see
    with pytest.raises(ValueError, match="latency_floor"):
        ProcessInference(pretrained_path(), latency_floor=-1.0)


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_bench_loop_reports_the_issue_figures(worker):
    result = loop_bench.run(seconds=1.0, worker=worker)
    for key in ("loop_hz", "deadline_misses", "jitter_ms_p99", "inference_ms_p50"):
        assert key in result
    assert result["ticks"] > 1 and math.isfinite(result["loop_hz"])
    assert result["deadline_misses"] >= result["skipped_ticks"] >= 0
    assert np.isfinite(result["tick_us_p99"]) and result["worker"] == worker
    assert result["realtime"] == (result["not_realtime_because"] is None)
    assert len(result["late_ticks"]) <= result["deadline_misses"]
    split = result["deadline_misses_own"] + result["deadline_misses_in_machine_stalls"]
    assert split == result["deadline_misses"] and isinstance(result["witness_realtime"], bool)
    assert result["chunks"] >= 1  # the policy answered observations from the arm's process
    # It times what policy_node runs: the same inference set-up and its defaults.
    assert result["precision"] == InferenceSettings().resolved().precision


def test_bench_loop_needs_a_rate_the_policy_rate_divides():
    with pytest.raises(ValueError, match="multiple"):
        loop_bench.run(seconds=0.1, rate_hz=25.0)


def _ticks(wake_ms, work_ms, skip_after=None):
    """Per-tick records of a 100 Hz loop starting at t = 100 s; `skip_after` maps a tick to
    the ticks skipped after it."""
    skip_after = skip_after or {}
    scheduled, t = [], 100.0
    for i in range(len(wake_ms)):
        scheduled.append(t)
        t += 0.01 * (1 + skip_after.get(i, 0))
    n = len(wake_ms)
    return loop_bench._Ticks(
        np.array(scheduled),
        np.array(wake_ms) / 1e3,
        np.array(work_ms) / 1e3,
        np.array(work_ms) / 1e3,
        *np.zeros((2, n)),
    )


def test_misses_count_late_and_skipped_ticks_and_blame_the_machine_only_when_it_stalled():
    # tick 1: 4 + 7 ms of work > 10 ms (the loop's own); tick 3 woke 35 ms late and 3 ticks were
    # skipped, while the witness saw the machine stop from 100.031 s for 34 ms.
    ticks = _ticks([0.2, 4.0, 0.1, 35.0, 0.2], [0.5, 7.0, 0.5, 0.6, 0.5], {3: 3})
    misses = loop_bench._misses(ticks, 0.01, [(100.031, 0.034)])
    assert misses["deadline_misses"] == 1 + (1 + 3)
    assert misses["deadline_misses_in_machine_stalls"] == 4
    assert misses["deadline_misses_own"] == 1
    assert misses["skipped_ticks"] == 3 and misses["machine_stalls"] == 1
    assert [(m["t_s"], m["machine_stall"]) for m in misses["late_ticks"]] == [
        (0.01, False),
        (0.03, True),
    ]
    # The same loop on a machine that never stalled: every miss is the loop's.
    assert loop_bench._misses(ticks, 0.01, [])["deadline_misses_own"] == 5


def test_a_stall_is_blamed_only_where_it_overlaps_the_late_tick():
    stalls = [(10.0, 0.02)]
    assert overlaps(stalls, 10.015, 10.03) and overlaps(stalls, 9.99, 10.001)
    assert not overlaps(stalls, 10.021, 10.05) and not overlaps(stalls, 9.9, 9.999)


def test_the_witness_watches_every_cpu_and_reports_late_wake_ups_in_order():
    # threshold -1 s: every wake-up counts as late, so each CPU's witness reports at least the
    # wake-up in progress when it is stopped.
    before = time.monotonic()
    with StallWitness(50, threshold=-1.0) as witness:
        stalls = witness.stalls()
    after = time.monotonic()
    assert len(stalls) >= len(os.sched_getaffinity(0))
    assert stalls == sorted(stalls)
    assert all(before <= start <= after and seconds > -1.0 for start, seconds in stalls)
