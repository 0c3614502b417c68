"""`bench loop`: the control loop with inference beside it, in a thread or a child process."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import wait_for

from robot_policy.policies import load_policy
from robot_policy.pretrained import pretrained_path
from robot_policy.runtime import loop_bench
from robot_policy.runtime.worker import InferenceWorker


def test_the_process_worker_answers_like_the_thread_worker():
    policy = load_policy(pretrained_path())
    obs = {k: v[0].numpy() for k, v in policy.blank_observation().items()}
    with InferenceWorker(policy) as thread, loop_bench.ProcessInference(pretrained_path()) as proc:
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


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_bench_loop_reports_the_issue_figures(worker):
    result = loop_bench.run(seconds=1.0, worker=worker)
    for key in ("loop_hz", "deadline_misses", "jitter_ms_p99", "inference_ms_p50"):
        assert key in result
    assert result["ticks"] > 1 and math.isfinite(result["loop_hz"])
    assert result["deadline_misses"] >= result["skipped_ticks"] >= 0
    assert np.isfinite(result["tick_us_p99"]) and result["worker"] == worker


def test_bench_loop_needs_a_rate_the_policy_rate_divides():
    with pytest.raises(ValueError, match="multiple"):
        loop_bench.run(seconds=0.1, rate_hz=25.0)
