"""The inference fast path computes what the eager network computes, for the same noise."""

import pytest
import torch
from torch import nn

from robot_policy.bench import inference as benchmark
from robot_policy.policies import (
    DiffusionConfig,
    FlowConfig,
    load_policy,
    make_policy,
    save_policy,
)
from robot_policy.policies.accelerate import accelerate
from robot_policy.policies.inference import InferenceSettings, cpu_precisions
from robot_policy.policies.inference_unet1d import PRECISIONS, InferenceUnet1D, _GemmConv1d, _Recipe
from robot_policy.policies.unet1d import ConditionalUnet1D
from robot_policy.pretrained import pretrained_path

# Largest |difference| allowed, as a fraction of the reference output's largest |value|.
TOLERANCE = {"fp32": 1e-5, "bf16": 5e-2, "int8": 5e-2}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, precision: str) -> None:
    error = (actual - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert error <= TOLERANCE[precision] * scale, f"{precision}: error {error} at scale {scale}"


def runs_here(precision: str) -> None:
    """oneDNN's bf16 kernels refuse CPUs without AVX-512 BW/VL/DQ or AVX-NE-CONVERT (an AVX2
    machine): there the fast path offers what runs, and these precisions are not tested."""
    if precision not in cpu_precisions():
        pytest.skip(f"{precision} does not run on this CPU (runs: {cpu_precisions()})")


def unet(down_dims, kernel_size=5, action_dim=3, cond_dim=24) -> ConditionalUnet1D:
    torch.manual_seed(0)
    return ConditionalUnet1D(action_dim, cond_dim, down_dims, kernel_size, step_embed_dim=32)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize(
    ("down_dims", "kernel_size", "levels"),
    [
        ((32, 64), 5, [7.0]),  # batch 1, flow-style float level
        ((16, 32, 64), 3, [3, 50, 99]),  # batch 3, distinct integer (diffusion) timesteps
    ],
)
def test_network_matches_the_reference(precision, packed, down_dims, kernel_size, levels):
    if packed:
        runs_here(precision)
    reference = unet(down_dims, kernel_size).eval()
    fast = InferenceUnet1D(reference, precision, packed=packed)
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(len(levels), 8, 3, generator=g)
    cond = torch.randn(len(levels), 24, generator=g)
    level = torch.tensor(levels)
    expected = reference(sample, level, cond)
    for _ in range(2):  # the second call reads the noise-level FiLM from the cache
        assert_close(fast(sample, level, cond), expected, precision)
    assert_close(fast(sample[:1], level[0], cond[:1]), expected[:1], precision)  # scalar level


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(4, 2, 1), (2, 2, 0), (3, 1, 1), (7, 3, 2)]
)
def test_transposed_convolution_as_stacked_phases(kernel, stride, padding):
    torch.manual_seed(0)
    conv = nn.ConvTranspose1d(6, 5, kernel, stride=stride, padding=padding)
    x = torch.randn(2, 6, 7)
    gemm = _GemmConv1d.from_transposed(conv, _Recipe("fp32", packed=True))
    expected = conv(x)
    assert expected.shape[-1] == 7 * stride
    assert_close(gemm(x.transpose(1, 2)).transpose(1, 2), expected, "fp32")


def test_unsupported_layers_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="multiply the length"):
        _GemmConv1d.from_transposed(
            nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1), _Recipe("fp32", True)
        )
    with pytest.raises(ValueError, match="ungrouped"):
        _GemmConv1d.from_conv(nn.Conv1d(4, 4, 3, groups=2), _Recipe("fp32", True))
    reference = unet((16, 32))
    with pytest.raises(ValueError, match="precision"):
        InferenceUnet1D(reference, "fp16")
    fast = InferenceUnet1D(reference)
    with pytest.raises(ValueError, match="multiple of 2"):
        fast(torch.zeros(1, 7, 3), torch.tensor([1.0]), torch.zeros(1, 24))
    with pytest.raises(RuntimeError, match="inference-only"):
        fast.train()


def policy_config(kind: str, cameras: bool, **overrides):
    cls = DiffusionConfig if kind == "diffusion" else FlowConfig
    return cls(
        action_dim=3,
        state_keys=("observation.state",),
        state_dims=(5,),
        camera_keys=("observation.images.front",) if cameras else (),
        down_dims=(32, 64),
        step_embed_dim=32,
        state_feature_dim=16,
        image_channels=(16, 32),
        image_keypoints=8,
        image_feature_dim=16,
        horizon=8,
        n_action_steps=4,
        image_size=(32, 32),
        crop_size=(28, 28),
        **overrides,
    )


def observation(cfg) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    obs = {"observation.state": torch.randn(1, cfg.n_obs_steps, 5, generator=g)}
    for key in cfg.camera_keys:
        shape = (1, cfg.n_obs_steps, *cfg.image_size, 3)
        obs[key] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return obs


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(
    ("kind", "cameras", "overrides"),
    [
        ("flow", False, dict(num_inference_steps=10)),
        ("flow", True, dict(num_inference_steps=3, integrator="midpoint")),
        ("diffusion", False, dict(num_inference_steps=10, prediction_type="epsilon")),
    ],
)
def test_accelerated_policy_chunk_matches_eager(precision, kind, cameras, overrides):
    runs_here(precision)
    policy = make_policy(policy_config(kind, cameras, **overrides)).eval()
    obs = observation(policy.config)
    noise = torch.randn(1, policy.config.horizon, policy.config.action_dim)
    expected = policy.predict_chunk(obs, noise)
    assert accelerate(policy, precision) is policy
    assert isinstance(policy.denoiser, InferenceUnet1D)
    assert_close(policy.predict_chunk(obs, noise), expected, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_shipped_checkpoint_chunk_matches_eager(precision):
    runs_here(precision)
    policy = load_policy(pretrained_path())
    obs = policy.blank_observation()
    noise = torch.randn(1, policy.config.horizon, policy.config.action_dim)
    expected = policy.predict_chunk(obs, noise)
    assert_close(accelerate(policy, precision).predict_chunk(obs, noise), expected, precision)


def test_checkpoint_layout_and_weight_loading_are_unchanged(tmp_path):
    cfg = policy_config("flow", cameras=False)
    policy = make_policy(cfg).eval()
    keys = list(policy.state_dict())
    accelerate(policy, cpu_precisions()[-1])
    accelerate(policy, "fp32")  # accelerating again changes the precision
    assert list(policy.state_dict()) == keys
    save_policy(policy, tmp_path / "ckpt")
    eager = load_policy(tmp_path / "ckpt")
    obs, noise = observation(cfg), torch.randn(1, cfg.horizon, cfg.action_dim)
    assert_close(policy.predict_chunk(obs, noise), eager.predict_chunk(obs, noise), "fp32")
    # Loading other weights into an accelerated policy re-derives its packed copies.
    torch.manual_seed(5)
    other = make_policy(cfg).eval()
    policy.load_state_dict(other.state_dict())
    assert_close(policy.predict_chunk(obs, noise), other.predict_chunk(obs, noise), "fp32")
    with pytest.raises(RuntimeError, match="inference-only"):
        policy.train()


def test_noise_level_cache_is_bounded_and_stays_correct():
    reference = unet((16, 32)).eval()
    fast = InferenceUnet1D(reference)
    sample, cond = torch.randn(1, 8, 3), torch.randn(1, 24)
    first = torch.tensor([0.0])
    for value in range(300):
        fast(sample, torch.tensor([float(value)]), cond)
    assert len(fast._level_cache) <= 256
    assert_close(fast(sample, first, cond), reference(sample, first, cond), "fp32")


def test_observation_film_is_reused_only_for_the_same_observation():
    reference = unet((16, 32)).eval()
    fast = InferenceUnet1D(reference)
    sample, level = torch.randn(1, 8, 3), torch.tensor([5.0])
    cond = torch.randn(1, 24)
    fast(sample, level, cond)
    cond.mul_(-2.0)  # the same tensor, new values: the kept FiLM must not be used
    assert_close(fast(sample, level, cond), reference(sample, level, cond), "fp32")
    other = torch.randn(3, 24)  # a new batch size
    samples, levels = torch.randn(3, 8, 3), torch.tensor([1.0, 2.0, 3.0])
    assert_close(fast(samples, levels, other), reference(samples, levels, other), "fp32")


def test_benchmark_reports_every_figure_against_eager():
    result = benchmark.run(load_policy(pretrained_path()), iters=2, warmup=1, load=True)
    for key in (
        "shipped_chunk_ms_p50",
        "shipped_chunk_ms_p99",
        "shipped_chunk_ms_p50_eager",
        "shipped_chunk_ms_p99_under_load",
        "dp_size_step_ms_p50",
        "dp_size_step_ms_p50_eager",
    ):
        assert result[key] > 0, key
    assert result["dp_size_step_ratio"] == pytest.approx(
        result["dp_size_step_ms_p50"] / result["dp_size_step_ms_p50_eager"]
    )
    # The default is what policy_node runs: the same inference settings, resolved here.
    assert result["precision"] == InferenceSettings().resolved().precision
    assert result["threads"] == 1
    assert 0 < result["dp_size_step_max_abs_diff"] < 0.1
    assert 0 < result["shipped_chunk_max_abs_diff"] < 0.1


def test_a_precision_this_cpu_cannot_run_is_refused_up_front(monkeypatch):
    import robot_policy.policies.inference as inference

    monkeypatch.setattr(inference, "cpu_precisions", lambda: ("fp32",))
    monkeypatch.setattr(inference, "native_bf16", lambda: False)
    with pytest.raises(ValueError, match="bf16 does not run on this CPU.*fp32"):
        InferenceSettings(device="cpu", precision="bf16").resolved()
    assert InferenceSettings(device="cpu").resolved().precision == "fp32"
    assert InferenceSettings(device="cpu", precision="eager").resolved().precision == "eager"


def test_auto_takes_bf16_only_where_the_cpu_has_it(monkeypatch):
    import robot_policy.policies.inference as inference

    monkeypatch.setattr(inference, "cpu_precisions", lambda: ("fp32", "bf16", "int8"))
    monkeypatch.setattr(inference, "native_bf16", lambda: True)
    assert InferenceSettings(device="cpu").resolved().precision == "bf16"
    monkeypatch.setattr(inference, "native_bf16", lambda: False)
    assert InferenceSettings(device="cpu").resolved().precision == "fp32"
