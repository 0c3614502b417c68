"""Real-time chunking on the policy side (flow guidance, diffusion inpainting) and warm start."""

import dataclasses

import pytest
import torch
from test_policies import batch, small_config

from robot_policy.policies import make_policy
from robot_policy.policies.guidance import pigdm_weight, soft_prefix_mask

SAMPLERS = [
    ("flow", {}),
    ("flow", {"integrator": "midpoint"}),
    ("diffusion", {}),
    ("diffusion", {"sampler": "dpmsolver++"}),
]


def setup(kind, **overrides):
    torch.manual_seed(0)
    cfg = small_config(kind, cameras=False, horizon=16, n_action_steps=8, **overrides)
    policy = make_policy(cfg).eval()
    obs = {k: v for k, v in batch(cfg).items() if k.startswith("observation")}
    noise = torch.randn(2, cfg.horizon, cfg.action_dim, generator=torch.Generator().manual_seed(1))
    return policy, obs, noise


def test_soft_mask_is_one_then_decays_to_zero_at_the_prefix_end():
    mask = soft_prefix_mask(horizon=16, prefix_len=10, committed=3)
    assert torch.equal(mask[:3], torch.ones(3))
    assert torch.all(mask[3:10] > 0) and torch.all(mask[3:10] < 1)
    assert torch.all(mask[3:10].diff() < 0)
    assert torch.equal(mask[10:], torch.zeros(6))


@pytest.mark.parametrize(("prefix_len", "committed"), [(17, 3), (10, 11), (10, -1)])
def test_soft_mask_rejects_inconsistent_lengths(prefix_len, committed):
    with pytest.raises(ValueError, match="committed"):
        soft_prefix_mask(16, prefix_len, committed)


def test_pigdm_weight_is_clipped_where_it_diverges_and_symmetric():
    assert pigdm_weight(1.0, 10.0) == 10.0 and pigdm_weight(0.0, 10.0) == 10.0
    assert pigdm_weight(0.5, 10.0) == pytest.approx(2.0)
    assert pigdm_weight(0.2, 100.0) == pytest.approx(pigdm_weight(0.8, 100.0))
    assert pigdm_weight(0.01, 10.0) == 10.0


@pytest.mark.parametrize(("kind", "overrides"), SAMPLERS)
def test_committed_prefix_is_reproduced(kind, overrides):
    policy, obs, noise = setup(kind, **overrides)
    plain = policy.predict_chunk(obs, noise)
    prefix = plain[:, :6] + 0.3  # a plan the unguided sampler does not produce
    guided = policy.predict_chunk(obs, noise, prefix=prefix, prefix_steps=3)
    assert torch.isfinite(guided).all()
    before = (plain[:, :3] - prefix[:, :3]).abs().max()
    after = (guided[:, :3] - prefix[:, :3]).abs().max()
    # Inpainting puts the committed actions back exactly; guidance pulls them close.
    assert after < (1e-5 if kind == "diffusion" else 0.1 * before)


def test_flow_guidance_is_the_only_change():
    """With the guidance weight clipped to 0 the guided sampler is the plain one."""
    policy, obs, noise = setup("flow")
    plain = policy.predict_chunk(obs, noise)
    policy.config = dataclasses.replace(policy.config, guidance_max_weight=0.0)
    unweighted = policy.predict_chunk(obs, noise, prefix=plain[:, :6] + 1.0, prefix_steps=3)
    torch.testing.assert_close(unweighted, plain)


@pytest.mark.parametrize(("kind", "overrides"), SAMPLERS)
def test_guidance_stays_finite_far_from_the_data(kind, overrides):
    policy, obs, noise = setup(kind, **overrides)
    prefix = torch.full((2, 16, 3), 1e4)
    chunk = policy.predict_chunk(obs, noise, prefix=prefix, prefix_steps=16)
    assert torch.isfinite(chunk).all()


@pytest.mark.parametrize(
    ("prefix", "steps", "match"),
    [
        (torch.zeros(2, 17, 3), 0, "prefix"),
        (torch.zeros(2, 4, 2), 0, "prefix"),
        (torch.zeros(2, 4), 0, "prefix"),
        (torch.zeros(2, 4, 3), 5, "committed"),
        (torch.full((2, 4, 3), float("nan")), 2, "NaN"),
    ],
)
def test_bad_prefixes_are_clear_errors(prefix, steps, match):
    policy, obs, noise = setup("flow")
    with pytest.raises(ValueError, match=match):
        policy.predict_chunk(obs, noise, prefix=prefix, prefix_steps=steps)


class CountingDenoiser(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args):
        self.calls += 1
        return self.inner(*args)


@pytest.mark.parametrize(("kind", "overrides"), SAMPLERS)
def test_warm_start_runs_only_the_remaining_steps_from_the_previous_plan(kind, overrides):
    policy, obs, noise = setup(kind, num_inference_steps=10, **overrides)
    plain = policy.predict_chunk(obs, noise)
    policy.set_warm_start(0.3)
    policy.denoiser = CountingDenoiser(policy.denoiser)
    calls_per_step = 2 if overrides.get("integrator") == "midpoint" else 1
    init = plain + 0.5
    warm = policy.predict_chunk(obs, noise, init=init)
    assert policy.denoiser.calls == 3 * calls_per_step
    assert torch.isfinite(warm).all()
    assert torch.equal(warm, policy.predict_chunk(obs, noise, init=init))
    assert not torch.allclose(warm, plain)


def test_warm_start_must_be_switched_on_and_in_range():
    policy, obs, noise = setup("flow")
    with pytest.raises(ValueError, match="warm start is off"):
        policy.predict_chunk(obs, noise, init=torch.zeros(2, 16, 3))
    for level in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="warm_start_level"):
            policy.set_warm_start(level)
    policy.set_warm_start(0.5)
    with pytest.raises(ValueError, match="init must have shape"):
        policy.predict_chunk(obs, noise, init=torch.zeros(2, 8, 3))


def test_guidance_through_a_non_differentiable_denoiser_is_a_clear_error():
    policy, obs, noise = setup("flow")

    class Frozen(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @torch.no_grad()
        def forward(self, *args):
            return self.inner(*args)

    policy.denoiser = Frozen(policy.denoiser)
    with pytest.raises(RuntimeError, match="not differentiable"):
        policy.predict_chunk(obs, noise, prefix=torch.zeros(2, 4, 3), prefix_steps=2)
