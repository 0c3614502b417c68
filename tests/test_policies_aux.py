"""The auxiliary head of image policies: trained from the cameras, never an input, never needed
at inference."""

from types import SimpleNamespace

import pytest
import torch

from robot_policy.policies import FlowConfig, make_policy
from robot_policy.policies.training import TrainSettings, policy_config_for

SMALL = dict(
    down_dims=(32, 64),
    step_embed_dim=32,
    state_hidden_dim=64,
    state_feature_dim=32,
    image_channels=(16, 32),
    image_keypoints=8,
    image_feature_dim=16,
    horizon=8,
    n_action_steps=4,
    image_size=(32, 32),
    crop_size=(32, 32),
)
ENV = "observation.environment_state"
FRONT = "observation.images.front"


def aux_config(**overrides) -> FlowConfig:
    base = dict(
        action_dim=3,
        state_keys=("observation.state",),
        state_dims=(4,),
        camera_keys=(FRONT,),
        aux_keys=(ENV,),
        aux_dims=(2,),
    )
    return FlowConfig(**{**base, **SMALL, **overrides})


def spot_batch(b: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Images of a bright square on black whose centre, in [-1, 1]², is the environment state:
    what an encoder must learn to read off a camera to find a cube."""
    cfg = aux_config()
    t, (h, w) = cfg.n_obs_steps, cfg.image_size
    where = torch.rand(b, t, 2, generator=generator) * 2 - 1
    images = torch.zeros(b, t, h, w, 3, dtype=torch.uint8)
    cols = ((where[..., 0] + 1) / 2 * (w - 6)).long()
    rows = ((where[..., 1] + 1) / 2 * (h - 6)).long()
    for i in range(b):
        for j in range(t):
            images[i, j, rows[i, j] : rows[i, j] + 6, cols[i, j] : cols[i, j] + 6] = 255
    return {
        "observation.state": torch.randn(b, t, 4, generator=generator),
        FRONT: images,
        ENV: where,
        "action": torch.randn(b, cfg.horizon, cfg.action_dim, generator=generator),
    }


def test_the_aux_head_learns_to_locate_the_object_from_the_image():
    torch.manual_seed(0)
    policy = make_policy(aux_config())
    policy.train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    held_out = spot_batch(64, torch.Generator().manual_seed(1))

    def error() -> float:
        with torch.no_grad():
            return policy.aux_loss(held_out, policy._features(held_out)).item()

    before = error()
    for _ in range(150):
        loss = policy.loss(spot_batch(16, g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # Uniform targets in [-1, 1] have variance 1/3: predicting the mean scores ~0.33.
    assert error() < 0.1 < before


def test_the_total_loss_adds_the_weighted_aux_loss_and_both_reach_the_encoder():
    data = spot_batch(4, torch.Generator().manual_seed(0))
    losses = {}
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        policy = make_policy(aux_config(aux_loss_weight=weight))
        torch.manual_seed(1)
        losses[weight] = policy.loss(data)
    torch.manual_seed(0)
    policy = make_policy(aux_config())
    aux = policy.aux_loss(data, policy._features(data))
    assert losses[2.0].item() == pytest.approx(losses[0.0].item() + 2.0 * aux.item(), rel=1e-5)
    aux.backward()
    assert all(p.grad is not None for p in policy.aux_head.parameters())
    assert all(p.grad is not None for p in policy.image_encoders.parameters())
    assert all(p.grad is None for p in policy.denoiser.parameters())


def test_inference_needs_no_aux_feature():
    policy = make_policy(aux_config()).eval()
    obs = spot_batch(2, torch.Generator().manual_seed(0))
    del obs[ENV], obs["action"]
    assert policy.predict_chunk(obs).shape == (2, 8, 3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(camera_keys=()), "need camera_keys"),
        (dict(aux_dims=(2, 3)), "differ in length"),
        (dict(state_keys=(ENV,), state_dims=(2,)), "must not be inputs"),
        (dict(aux_loss_weight=float("nan")), "aux_loss_weight"),
    ],
)
def test_invalid_aux_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        aux_config(**overrides)


def fake_dataset(cameras: bool) -> SimpleNamespace:
    features = {
        "action": {"shape": [8]},
        "observation.state": {"shape": [9]},
        ENV: {"shape": [13]},
    }
    if cameras:
        features[FRONT] = {"shape": [96, 96, 3]}
    return SimpleNamespace(features=features, fps=10)


def test_image_policies_supervise_on_the_environment_state_by_default():
    def config(cameras: tuple[str, ...], **overrides):
        settings = TrainSettings(
            dataset="-", policy="flow", out="-", cameras=cameras, policy_overrides=overrides
        )
        return policy_config_for(fake_dataset(bool(cameras)), settings)

    image = config(("front",))
    assert image.state_keys == ("observation.state",)
    assert (image.aux_keys, image.aux_dims) == ((ENV,), (13,))
    assert config(("front",), aux_keys=[]).aux_keys == ()
    state = config(())
    assert ENV in state.state_keys and state.aux_keys == ()
    with pytest.raises(ValueError, match="not features"):
        config(("front",), aux_keys=["observation.cube"])
