"""Policies: shapes, normalization, sampler step counts, checkpoints and their failure modes."""

import json

import numpy as np
import pytest
import torch

from robot_policy.policies import (
    CheckpointError,
    DiffusionConfig,
    FlowConfig,
    load_policy,
    make_policy,
    save_policy,
)
from robot_policy.policies.normalize import MinMaxNormalizer

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
    crop_size=(28, 28),
)


def small_config(kind: str, cameras: bool = True, **overrides):
    cls = DiffusionConfig if kind == "diffusion" else FlowConfig
    return cls(
        action_dim=3,
        state_keys=("observation.state", "observation.environment_state"),
        state_dims=(4, 2),
        camera_keys=("observation.images.front",) if cameras else (),
        **{**SMALL, **overrides},
    )


def batch(cfg, b: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {
        k: torch.randn(b, cfg.n_obs_steps, d, generator=g)
        for k, d in zip(cfg.state_keys, cfg.state_dims, strict=True)
    }
    for key in cfg.camera_keys:
        out[key] = torch.randint(
            0, 256, (b, cfg.n_obs_steps, *cfg.image_size, 3), dtype=torch.uint8, generator=g
        )
    out["action"] = torch.randn(b, cfg.horizon, cfg.action_dim, generator=g)
    out["action_is_pad"] = torch.zeros(b, cfg.horizon, dtype=torch.bool)
    return out


@pytest.mark.parametrize("kind", ["diffusion", "flow"])
def test_loss_and_chunk_shapes(kind):
    cfg = small_config(kind)
    policy = make_policy(cfg)
    loss = policy(batch(cfg))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in policy.denoiser.parameters())
    policy.eval()
    chunk = policy.predict_chunk(batch(cfg, b=3))
    assert chunk.shape == (3, cfg.horizon, cfg.action_dim)
    assert torch.isfinite(chunk).all()


def test_padded_actions_do_not_contribute_to_the_loss():
    cfg = small_config("flow", cameras=False)
    policy = make_policy(cfg)
    b = batch(cfg)
    b["action_is_pad"][:, -3:] = True
    per_element = torch.rand(2, cfg.horizon, cfg.action_dim)
    per_element[:, -3:] = 1e6  # what padded steps would add if they counted
    policy.generative_loss = lambda actions, cond: per_element
    assert policy(b).item() == pytest.approx(per_element[:, :-3].mean().item(), rel=1e-6)


def test_normalizer_round_trip_and_range():
    norm = MinMaxNormalizer({"action": 3})
    norm.set_stats(
        {"action": {"min": [0.0, -2.0, 5.0], "max": [1.0, 2.0, 5.0]}}
    )  # last dim constant
    x = torch.tensor([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0], [0.5, 0.0, 5.0]])
    y = norm.normalize("action", x)
    assert torch.allclose(y[:, :2], torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    assert torch.isfinite(y).all()
    assert torch.allclose(norm.unnormalize("action", y), x, atol=1e-6)


def test_normalizer_rejects_bad_stats():
    norm = MinMaxNormalizer({"action": 3})
    with pytest.raises(ValueError, match="action"):
        norm.set_stats({"action": {"min": [0.0], "max": [1.0]}})
    with pytest.raises(ValueError, match="no min/max"):
        norm.set_stats({})
    with pytest.raises(ValueError, match="not finite"):
        norm.set_stats({"action": {"min": [0.0, np.nan, 0.0], "max": [1.0, 1.0, 1.0]}})


class CountingDenoiser(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args):
        self.calls += 1
        return self.inner(*args)


@pytest.mark.parametrize(
    ("kind", "overrides", "calls"),
    [
        ("diffusion", dict(num_inference_steps=10), 10),
        ("diffusion", dict(num_inference_steps=4, sampler="dpmsolver++"), 4),
        ("flow", dict(num_inference_steps=1), 1),
        ("flow", dict(num_inference_steps=10), 10),
        ("flow", dict(num_inference_steps=3, integrator="midpoint"), 6),
    ],
)
def test_sampler_calls_the_denoiser_once_per_step(kind, overrides, calls):
    cfg = small_config(kind, cameras=False, **overrides)
    policy = make_policy(cfg).eval()
    policy.denoiser = CountingDenoiser(policy.denoiser)
    policy.predict_chunk(batch(cfg))
    assert policy.denoiser.calls == calls


def test_same_noise_same_chunk():
    cfg = small_config("diffusion", cameras=False)
    policy = make_policy(cfg).eval()
    noise = torch.randn(2, cfg.horizon, cfg.action_dim)
    obs = batch(cfg)
    assert torch.equal(policy.predict_chunk(obs, noise), policy.predict_chunk(obs, noise))


@pytest.mark.parametrize("kind", ["diffusion", "flow"])
def test_checkpoint_round_trip(tmp_path, kind):
    cfg = small_config(kind)
    policy = make_policy(cfg).eval()
    policy.normalizer.set_stats(
        {
            "observation.state": {"min": [-1.0] * 4, "max": [2.0] * 4},
            "observation.environment_state": {"min": [0.0] * 2, "max": [1.0] * 2},
            "action": {"min": [-3.0] * 3, "max": [3.0] * 3},
        }
    )
    save_policy(policy, tmp_path / "ckpt", metadata={"dataset": "x"})
    loaded = load_policy(tmp_path / "ckpt")
    assert type(loaded) is type(policy) and loaded.config == cfg
    noise = torch.randn(1, cfg.horizon, cfg.action_dim)
    obs = batch(cfg, b=1)
    assert torch.equal(loaded.predict_chunk(obs, noise), policy.predict_chunk(obs, noise))


@pytest.fixture
def checkpoint(tmp_path):
    return save_policy(make_policy(small_config("flow", cameras=False)), tmp_path / "ckpt")


def test_missing_folder_or_files_are_named(tmp_path, checkpoint):
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_policy(tmp_path / "nope")
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_policy(checkpoint)


def test_truncated_weights_are_a_clear_error(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(checkpoint)


def test_malformed_config_is_a_clear_error(checkpoint):
    (checkpoint / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_policy(checkpoint)


def test_config_that_disagrees_with_weights_is_a_clear_error(checkpoint):
    doc = json.loads((checkpoint / "config.json").read_text())
    doc["policy"]["down_dims"] = [32, 128]
    (checkpoint / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        load_policy(checkpoint)


def test_unknown_config_fields_and_versions_are_rejected(checkpoint):
    doc = json.loads((checkpoint / "config.json").read_text())
    doc["policy"]["n_obs_stepz"] = 2
    (checkpoint / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="n_obs_stepz"):
        load_policy(checkpoint)
    doc["policy"].pop("n_obs_stepz")
    doc["policy"]["format_version"] = 99
    (checkpoint / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format_version"):
        load_policy(checkpoint)


def test_non_finite_weights_are_rejected(checkpoint):
    from safetensors.torch import load_file, save_file

    tensors = load_file(checkpoint / "model.safetensors")
    name = next(k for k in tensors if k.startswith("denoiser") and tensors[k].is_floating_point())
    tensors[name][..., 0] = float("nan")
    save_file(tensors, checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_policy(checkpoint)


def test_invalid_config_values_are_rejected():
    with pytest.raises(ValueError, match="horizon"):
        small_config("flow", horizon=6, down_dims=(32, 64, 128))
    with pytest.raises(ValueError, match="n_action_steps"):
        small_config("flow", n_action_steps=20)
    with pytest.raises(ValueError, match="integrator"):
        small_config("flow", integrator="rk4")


def test_inference_steps_can_change_after_training_but_stay_valid():
    policy = make_policy(small_config("diffusion", cameras=False))
    policy.set_inference_steps(100)
    assert policy.config.num_inference_steps == 100
    with pytest.raises(ValueError, match="num_inference_steps"):
        policy.set_inference_steps(0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        policy.set_inference_steps(101)  # more than the 100 training timesteps


def test_device_selection_is_explicit():
    from robot_policy.policies.device import select_device

    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            select_device("cuda")
