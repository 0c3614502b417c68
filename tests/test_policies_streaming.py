"""Streaming Diffusion Policy: the noise-level schedule, the rolling buffer, training, loading."""

import pytest
import torch
from test_policies import batch, small_config

from robot_policy.policies import load_policy, make_policy, save_policy
from robot_policy.policies.streaming import StreamingSampler, StreamingSchedule


def streaming_policy(**overrides):
    torch.manual_seed(0)
    settings = {"streaming": True, "horizon": 16, "n_action_steps": 3, **overrides}
    cfg = small_config("diffusion", cameras=False, **settings)
    policy = make_policy(cfg).eval()
    obs = {k: v for k, v in batch(cfg, b=1).items() if k.startswith("observation")}
    return policy, obs


def noise(seed: int) -> torch.Tensor:
    return torch.randn(1, 16, 3, generator=torch.Generator().manual_seed(seed))


def test_schedule_ramps_by_blocks_and_needs_fewer_calls_per_action():
    schedule = StreamingSchedule(horizon=16, now=1, block=3, steps=10, train_timesteps=100)
    # Fresh noise enters at position 13 and is executed 4 observations later: 2 calls each.
    assert schedule.calls_per_observation == 2
    assert schedule.target().tolist() == [0, 0, 0, 0, 2, 2, 2, 4, 4, 4, 6, 6, 6, 8, 8, 8]
    assert schedule.timesteps(torch.tensor([0, 1, 2, 10])).tolist() == [0, 0, 10, 90]
    whole = StreamingSchedule(horizon=16, now=1, block=15, steps=10, train_timesteps=100)
    assert whole.calls_per_observation == 10  # nothing to stream: plain DDIM


def test_schedule_training_patterns_are_valid_levels():
    schedule = StreamingSchedule(horizon=16, now=1, block=3, steps=10, train_timesteps=100)
    remaining = schedule.training_remaining(256, torch.device("cpu"))
    assert remaining.shape == (256, 16)
    assert remaining.min() >= 0 and remaining.max() <= 10
    assert torch.all(remaining.diff(dim=1) >= 0)  # noise never falls along the horizon
    assert torch.all(remaining >= schedule.target())  # never cleaner than the ramp


@pytest.mark.parametrize("kw", [{"block": 0}, {"block": 16}, {"steps": 0}])
def test_schedule_rejects_impossible_settings(kw):
    with pytest.raises(ValueError):
        StreamingSchedule(**{"horizon": 16, "now": 1, "block": 3, "steps": 10,
                             "train_timesteps": 100, **kw})  # fmt: skip


def test_with_equal_levels_the_buffer_update_is_ddim():
    """Executing the whole future per observation leaves nothing to stream, so the first
    buffer must come out exactly as plain DDIM sampling from the same noise."""
    policy, obs = streaming_policy(n_action_steps=15)
    sampler = StreamingSampler(policy)
    torch.testing.assert_close(
        sampler.next_chunk(obs, noise(1), shift=0), policy.predict_chunk(obs, noise(1))
    )
    assert sampler.calls == 10


def test_steady_state_costs_k_calls_per_observation_and_keeps_the_front_clean():
    policy, obs = streaming_policy()
    sampler = StreamingSampler(policy)
    first = sampler.next_chunk(obs, noise(1), shift=0)
    assert sampler.calls == 10  # the first buffer is denoised from scratch
    calls = []
    for seed in range(2, 6):
        before = sampler.calls
        chunk = sampler.next_chunk(obs, noise(seed), shift=3)
        calls.append(sampler.calls - before)
        assert torch.isfinite(chunk).all() and chunk.shape == first.shape
    assert calls == [2, 2, 2, 2]  # 2 calls per 3 actions, against 10 per chunk for DDIM
    assert sampler._remaining.tolist() == sampler.schedule.target().tolist()
    sampler.reset()  # a new episode starts from noise again
    before = sampler.calls
    sampler.next_chunk(obs, noise(7), shift=3)
    assert sampler.calls - before == 10


def test_buffer_carries_over_between_observations():
    policy, obs = streaming_policy()
    sampler = StreamingSampler(policy)
    first = sampler.next_chunk(obs, noise(1), shift=0)
    second = sampler.next_chunk(obs, noise(2), shift=3)
    # The clean past of the new chunk is the executed front of the old one.
    torch.testing.assert_close(second[:, :1], first[:, 3:4])


def test_a_late_observation_gets_the_extra_calls_it_needs():
    policy, obs = streaming_policy()
    sampler = StreamingSampler(policy)
    sampler.next_chunk(obs, noise(1), shift=0)
    before = sampler.calls
    sampler.next_chunk(obs, noise(2), shift=5)  # 2 steps later than the 3-step block
    assert sampler.calls - before > 2
    with pytest.raises(ValueError, match="shift"):
        sampler.next_chunk(obs, noise(3), shift=-1)


def test_streaming_needs_a_streaming_checkpoint():
    policy = make_policy(small_config("diffusion", cameras=False))
    with pytest.raises(ValueError, match="streaming=true"):
        StreamingSampler(policy)
    with pytest.raises(ValueError, match="per-action noise levels"):
        policy.denoise(torch.zeros(1, 8, 3), torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="ddim"):
        small_config("diffusion", streaming=True, sampler="dpmsolver++")


def test_streaming_policy_trains_and_round_trips(tmp_path):
    policy, obs = streaming_policy()
    policy.train()
    loss = policy(batch(policy.config))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in policy.denoiser.parameters())
    policy.eval()
    loaded = load_policy(save_policy(policy, tmp_path / "ckpt"))
    assert loaded.config.streaming and loaded.config == policy.config
    torch.testing.assert_close(
        loaded.predict_chunk(obs, noise(1)), policy.predict_chunk(obs, noise(1))
    )


def test_checkpoints_from_before_the_new_fields_still_load(tmp_path):
    import json

    policy = make_policy(small_config("flow", cameras=False))
    folder = save_policy(policy, tmp_path / "ckpt")
    doc = json.loads((folder / "config.json").read_text())
    for field in ("warm_start_level", "guidance_max_weight"):
        doc["policy"].pop(field)
    (folder / "config.json").write_text(json.dumps(doc))
    assert load_policy(folder).config == policy.config
