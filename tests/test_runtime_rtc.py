"""Real-time chunking, streaming and warm start through the runtime: the plan handed to the
policy, the worker, and closed-loop evaluation in sim with an untrained (but real) policy."""

import dataclasses

import numpy as np
import pytest
import torch

import robot_policy.eval.evaluate as evaluation
from robot_policy.policies import DiffusionConfig, make_policy
from robot_policy.runtime.chunks import ChunkScheduler, SchedulerConfig, TimedChunk
from robot_policy.runtime.replan import PlanHints, plan_hints
from robot_policy.runtime.strategies import strategies_for
from robot_policy.runtime.worker import InferenceWorker
from robot_policy.sim import SimConfig

DT = 0.1
# 3 s episodes: long enough for several chunk switches, short enough for a unit test.
SHORT = SimConfig(episode_seconds={"reach": 3.0})
# The reach task's features: 8 joint targets, 8 + 6 observed values.
REACH = DiffusionConfig(
    action_dim=8,
    state_keys=("observation.state", "observation.environment_state"),
    state_dims=(8, 6),
    down_dims=(16, 32),
    step_embed_dim=16,
    state_hidden_dim=32,
    state_feature_dim=16,
    horizon=16,
    n_action_steps=3,
    num_inference_steps=4,
)


def policy_for(**overrides):
    torch.manual_seed(0)
    return make_policy(dataclasses.replace(REACH, **overrides)).eval()


def scheduler_with_a_chunk(delay_steps: int = 2) -> ChunkScheduler:
    sched = ChunkScheduler(SchedulerConfig(n_action_steps=4))
    actions = np.arange(10, dtype=float)[:, None] * np.ones(3)
    sched.add(TimedChunk(0.0, DT, actions), now=delay_steps * DT)
    return sched


def test_hints_commit_the_past_and_the_expected_delay():
    sched = scheduler_with_a_chunk(delay_steps=2)
    hints = plan_hints(sched, 0.4, DT, now_index=1, horizon=16, rtc=True, warm_start=True)
    # Window starts one step before the stamp (t = 0.3, action 3) and runs to the chunk's end.
    np.testing.assert_allclose(hints.prefix[:, 0], np.arange(3.0, 10.0))
    assert hints.prefix_steps == 1 + 2
    assert hints.init.shape == (16, 3)
    np.testing.assert_allclose(hints.init[7:, 0], 9.0)  # the plan held at its last action


def test_no_hints_without_a_plan_or_without_asking():
    empty = ChunkScheduler(SchedulerConfig())
    assert plan_hints(empty, 0.0, DT, 1, 16, rtc=True, warm_start=True) == PlanHints()
    sched = scheduler_with_a_chunk()
    assert plan_hints(sched, 0.4, DT, 1, 16, rtc=False, warm_start=False) == PlanHints()
    assert plan_hints(sched, 5.0, DT, 1, 16, rtc=True, warm_start=False) == PlanHints()


def test_worker_hands_the_committed_prefix_to_the_policy():
    policy = policy_for()
    prefix = np.linspace(0.0, 0.5, 6)[:, None] * np.ones(8)
    with InferenceWorker(policy, warmup=0) as worker:
        obs = {k: v[0].numpy() for k, v in policy.blank_observation().items()}
        worker.submit(obs, 1.0, PlanHints(prefix=prefix, prefix_steps=4))
        assert worker.wait_idle(30.0)
        chunk = worker.poll()
    # The worker's chunk starts at the observation's step (index now_index = 1).
    np.testing.assert_allclose(chunk.actions[:3], prefix[1:4], atol=1e-5)


def evaluate_with_trace(policy, monkeypatch, **kw):
    traces = []
    monkeypatch.setattr(evaluation, "plot_chunks", lambda trace, *a, **k: traces.append(trace))
    result = evaluation.evaluate(
        policy, "reach", 1, seed=3, safety=False, sim_config=SHORT, plot_path="x.png",
        progress=False, **kw,
    )  # fmt: skip
    return result, traces[0]


def test_rtc_chunks_reproduce_what_was_executed_while_they_were_computed(monkeypatch):
    policy = policy_for()
    result, trace = evaluate_with_trace(policy, monkeypatch, strategy="rtc", latency_ms=200)
    executed = np.asarray(trace.executed)
    delay, now = 2, policy.now_index
    assert len(trace.chunks) > 3
    for start, chunk in trace.chunks[1:]:
        committed = slice(start, min(start + now + delay, len(executed)))
        np.testing.assert_allclose(chunk[: committed.stop - start], executed[committed], atol=1e-4)
    assert np.isfinite(result.boundary_jerk_mean)


def test_streaming_needs_fewer_denoiser_calls_than_plain_sampling(monkeypatch):
    policy = policy_for(streaming=True)
    plain, _ = evaluate_with_trace(policy, monkeypatch, strategy="receding")
    streamed, trace = evaluate_with_trace(policy, monkeypatch, strategy="streaming")
    assert plain.denoiser_calls_per_step == pytest.approx(plain.chunks_per_step * 4)
    assert streamed.denoiser_calls_per_step < 0.5 * plain.denoiser_calls_per_step
    # 500 ms late, observations come 5 steps apart instead of 3: each needs catch-up calls.
    late, _ = evaluate_with_trace(policy, monkeypatch, strategy="streaming", latency_ms=500)
    per_chunk = [r.denoiser_calls_per_step / r.chunks_per_step for r in (streamed, late)]
    assert per_chunk[1] > per_chunk[0]


def test_warm_start_in_the_loop_saves_denoiser_calls(monkeypatch):
    policy = policy_for()
    cold, _ = evaluate_with_trace(policy, monkeypatch, strategy="receding")
    policy.set_warm_start(0.5)
    warm, _ = evaluate_with_trace(policy, monkeypatch, strategy="receding")
    calls_per_chunk = warm.denoiser_calls_per_step / warm.chunks_per_step
    assert 2 <= calls_per_chunk < cold.denoiser_calls_per_step / cold.chunks_per_step


def test_evaluate_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="strategy"):
        evaluation.evaluate(policy_for(), "reach", 1, strategy="fastest", progress=False)
    with pytest.raises(ValueError, match="streaming=true"):
        evaluation.evaluate(policy_for(), "reach", 1, strategy="streaming", progress=False)
    warm = policy_for(streaming=True, warm_start_level=0.5)
    with pytest.raises(ValueError, match="warm-start"):
        evaluation.evaluate(warm, "reach", 1, strategy="streaming", progress=False)
    assert "streaming" not in strategies_for(policy_for().config)
    assert "streaming" in strategies_for(policy_for(streaming=True).config)
