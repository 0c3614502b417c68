"""Training-time photometric augmentation of camera frames: bounded, structure-preserving, and
never applied at inference."""

import math

import pytest
import torch

from robot_policy.policies import FlowConfig, make_policy
from robot_policy.policies.encoders import color_jitter

FRONT = "observation.images.front"


def spot_images(b: int) -> torch.Tensor:
    """(B, 3, 32, 32) images: a reddish square on a tan table, at a different place per sample."""
    images = torch.empty(b, 3, 32, 32)
    images[:] = torch.tensor([0.78, 0.68, 0.52])[:, None, None]
    for i in range(b):
        r, c = (3 * i) % 24, (5 * i) % 24
        images[i, :, r : r + 6, c : c + 6] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    return images


def test_zero_strength_leaves_frames_unchanged():
    images = spot_images(4)
    assert torch.equal(color_jitter(images, 0.0), images)


def test_frames_stay_in_range_and_differ_per_sample():
    images = spot_images(8)
    out = color_jitter(images, 0.6, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    table = out[:, :, -1, -1]  # a table pixel of each sample
    assert torch.unique(table, dim=0).shape[0] == 8


def test_the_cube_stays_where_it_was_and_stands_out_from_the_table():
    """The augmentation changes colours, never positions: the red channel's contrast against
    the others still finds the square in every sample."""
    images = spot_images(16)
    out = color_jitter(images, 0.4, generator=torch.Generator().manual_seed(1))
    redness = out[:, 0] - out[:, 1:].mean(dim=1)  # (B, H, W)
    for i in range(16):
        r, c = (3 * i) % 24, (5 * i) % 24
        inside = redness[i, r : r + 6, c : c + 6].min()
        outside = redness[i].clone()
        outside[r : r + 6, c : c + 6] = -math.inf
        assert inside > outside.max()


def test_gain_brightness_and_greying_are_bounded_by_the_strength():
    flat = torch.full((64, 3, 4, 4), 0.5)
    out = color_jitter(flat, 0.2, generator=torch.Generator().manual_seed(2))
    # gain 1 +- 0.2 and offset +- 0.05 move 0.5 by at most 0.15; greying only narrows it.
    assert (out - 0.5).abs().max() <= 0.15 + 1e-6


def small_policy(color_jitter: float):
    config = FlowConfig(
        action_dim=2,
        state_keys=("observation.state",),
        state_dims=(3,),
        camera_keys=(FRONT,),
        image_size=(32, 32),
        crop_size=(32, 32),
        down_dims=(16, 32),
        step_embed_dim=16,
        state_hidden_dim=16,
        state_feature_dim=8,
        image_channels=(8, 16),
        image_keypoints=4,
        image_feature_dim=8,
        horizon=8,
        n_action_steps=4,
        color_jitter=color_jitter,
    )
    torch.manual_seed(0)
    return make_policy(config)


def test_policies_jitter_only_while_training():
    plain, jittered = small_policy(0.0), small_policy(0.5)
    jittered.load_state_dict(plain.state_dict())
    obs = {
        "observation.state": torch.zeros(2, 2, 3),
        FRONT: (spot_images(4).permute(0, 2, 3, 1) * 255).to(torch.uint8).reshape(2, 2, 32, 32, 3),
    }
    plain.eval(), jittered.eval()
    assert torch.equal(plain.encode(obs), jittered.encode(obs))
    plain.train(), jittered.train()
    assert not torch.equal(plain.encode(obs), jittered.encode(obs))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_a_config_refuses_an_out_of_range_strength(bad):
    with pytest.raises(ValueError, match="color_jitter"):
        small_policy(bad)
