"""Training end to end on a tiny real dataset: loss falls, resume continues, DDP runs on CPU."""

import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from robot_policy.collect import collect_scripted
from robot_policy.eval.evaluate import evaluate
from robot_policy.policies import load_policy, read_checkpoint_config
from robot_policy.policies.training import TRAINING_STATE_FILE, TrainSettings, train

TINY = {
    "down_dims": [32, 64],
    "step_embed_dim": 32,
    "state_hidden_dim": 64,
    "state_feature_dim": 32,
    "horizon": 8,
    "n_action_steps": 4,
}


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "reach"
    collect_scripted("reach", 6, out, seed=0, progress=False)
    return out


def settings(dataset, out, **kw) -> TrainSettings:
    base = dict(
        dataset=str(dataset),
        policy="flow",
        out=str(out),
        steps=200,
        batch_size=32,
        lr=1e-3,
        warmup_steps=10,
        threads=1,
        checkpoint_every=100,
        policy_overrides=dict(TINY),
    )
    return TrainSettings(**{**base, **kw})


@pytest.mark.parametrize("policy", ["diffusion", "flow"])
def test_loss_falls_and_checkpoint_runs_closed_loop(reach_dataset, tmp_path, policy):
    result = train(settings(reach_dataset, tmp_path / "ckpt", policy=policy), progress=False)
    assert result["steps"] == 200
    assert result["final_loss"] < 0.7 * result["first_loss"], result
    loaded = load_policy(tmp_path / "ckpt")
    _, metadata = read_checkpoint_config(tmp_path / "ckpt")
    assert metadata["step"] == 200 and metadata["dataset"] == str(reach_dataset)
    # The stats travel inside the checkpoint: normalized actions of the data sit in [-1, 1].
    assert torch.all(loaded.normalizer._low("action") < loaded.normalizer._high("action") + 1e-6)
    video, plot = tmp_path / "episode.mp4", tmp_path / "chunks.png"
    outcome = evaluate(
        loaded, "reach", episodes=2, seed=1000, video_path=video, plot_path=plot, progress=False
    )
    assert outcome.episodes == 2 and 0.0 <= outcome.success_rate <= 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(video)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 1 <= frames <= 50  # one frame per step of the first episode (reach: 50 at most)


def test_bf16_autocast_training_learns_and_keeps_fp32_weights(reach_dataset, tmp_path):
    """The forward under bfloat16 autocast (emulated where the CPU lacks it: slow, correct)."""
    out = tmp_path / "bf16"
    result = train(settings(reach_dataset, out, precision="bf16"), progress=False)
    assert result["precision"] == "bf16"
    assert result["final_loss"] < 0.7 * result["first_loss"], result
    assert all(p.dtype == torch.float32 for p in load_policy(out).parameters())
    with pytest.raises(ValueError, match="precision"):
        train(settings(reach_dataset, tmp_path / "x", precision="fp16"), progress=False)


def test_resume_continues_from_the_saved_step(reach_dataset, tmp_path):
    out = tmp_path / "ckpt"
    train(
        settings(reach_dataset, out, steps=100, checkpoint_every=50, keep_checkpoints=True),
        progress=False,
    )
    state = torch.load(out / TRAINING_STATE_FILE, weights_only=False)
    assert state["step"] == 100
    # Every checkpoint kept, each a checkpoint folder of its own step.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["000050", "000100"]
    assert read_checkpoint_config(out / "checkpoints" / "000050")[1]["step"] == 50
    resumed = train(settings(reach_dataset, out, steps=150, resume=True), progress=False)
    assert resumed["steps"] == 150
    assert torch.load(out / TRAINING_STATE_FILE, weights_only=False)["step"] == 150
    with pytest.raises(ValueError, match="different policy config"):
        overrides = {**TINY, "down_dims": [32, 32]}
        train(settings(reach_dataset, out, steps=200, resume=True, policy_overrides=overrides))


def test_resume_without_state_is_a_clear_error(reach_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="training_state.pt"):
        train(settings(reach_dataset, tmp_path / "none", resume=True), progress=False)


def test_torchrun_two_process_ddp_on_cpu(reach_dataset, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "robot_policy", "train", "--dataset", str(reach_dataset), "--policy", "diffusion",
        "--out", str(out), "--steps", "20", "--batch-size", "16", "--threads", "1",
        "--checkpoint-every", "10", "--json",
    ]  # fmt: skip
    cmd += [arg for key, value in TINY.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, "exactly one report, from rank 0"
    assert reports[0]["world_size"] == 2 and reports[0]["steps"] == 20
    load_policy(out)


def test_eval_with_temporal_ensembling_replans_every_step(reach_dataset, tmp_path):
    train(settings(reach_dataset, tmp_path / "ckpt", steps=20), progress=False)
    policy = load_policy(tmp_path / "ckpt")
    ensemble = evaluate(policy, "reach", episodes=2, seed=5, strategy="ensemble", progress=False)
    assert ensemble.strategy == "ensemble" and ensemble.chunks_per_step == 1.0
    receding = evaluate(policy, "reach", episodes=2, seed=5, progress=False)
    n = policy.config.n_action_steps
    assert 1 / n <= receding.chunks_per_step <= 1 / n + 2 / receding.mean_episode_length


def test_injected_latency_holds_until_the_first_chunk_arrives(reach_dataset, tmp_path, monkeypatch):
    import robot_policy.eval.evaluate as evaluation

    train(settings(reach_dataset, tmp_path / "ckpt", steps=20), progress=False)
    policy = load_policy(tmp_path / "ckpt")
    traces = []
    monkeypatch.setattr(evaluation, "plot_chunks", lambda trace, *a, **k: traces.append(trace))
    outcome = evaluate(
        policy,
        "reach",
        episodes=1,
        seed=3,
        latency_ms=250,
        safety=False,  # compare the scheduler's picks with the chunk, unfiltered
        plot_path="x.png",
        progress=False,
    )
    assert outcome.latency_ms == 250
    executed = np.asarray(traces[0].executed)
    first_stamp, first_chunk = traces[0].chunks[0]
    current = policy.config.n_obs_steps - 1
    # Steps 0..2 come before the chunk lands at 0.25 s: the arm holds its start state.
    np.testing.assert_array_equal(executed[0], executed[2])
    # Step 3 (t = 0.3 s) runs the first chunk's action for t = 0.3 s: its fourth fresh action.
    np.testing.assert_allclose(executed[3], first_chunk[current + 3], rtol=1e-6)
    assert first_stamp == -current


def test_eval_sends_every_action_through_the_safety_filter(reach_dataset, tmp_path, monkeypatch):
    import robot_policy.eval.evaluate as evaluation
    from robot_policy.robots import load_robot
    from robot_policy.safety import SafetyLimits

    train(settings(reach_dataset, tmp_path / "ckpt", steps=20), progress=False)
    policy = load_policy(tmp_path / "ckpt")  # barely trained: its actions are rough
    traces = []
    monkeypatch.setattr(evaluation, "plot_chunks", lambda trace, *a, **k: traces.append(trace))
    outcome = evaluate(policy, "reach", episodes=1, seed=3, plot_path="x.png", progress=False)
    assert outcome.safety and outcome.safety_interventions > 0
    executed = np.asarray(traces[0].executed, dtype=np.float64)
    limits = SafetyLimits.from_robot(load_robot()).arrays(traces[0].action_names)
    assert np.all(executed >= limits["lower"] - 1e-6) and np.all(executed <= limits["upper"] + 1e-6)
    speed = np.abs(np.diff(executed, axis=0)) / (1.0 / policy.config.fps)
    assert np.all(speed <= limits["velocity"] + 1e-4)


def test_the_frame_cache_holds_the_cameras_the_policy_reads_within_its_budget(tmp_path):
    from test_data_common import CAMERA, HEIGHT, WIDTH, write_dataset

    from robot_policy.data import LeRobotDataset
    from robot_policy.policies.training import _frame_cache_frames, policy_config_for

    write_dataset(tmp_path / "ds", [6, 9])
    dataset = LeRobotDataset(tmp_path / "ds")
    crop = {**TINY, "crop_size": [32, 32]}
    image_run = settings(
        tmp_path / "ds", tmp_path / "ck", cameras=("front",), policy_overrides=crop
    )
    config = policy_config_for(dataset, image_run)
    assert config.camera_keys == (CAMERA,)
    assert _frame_cache_frames(dataset, config, image_run) == 15  # all of them
    # 1 MiB split between 20 workers: 52 KiB each, two frames of 64x96x3.
    per_worker = settings(
        tmp_path / "ds",
        tmp_path / "ck",
        cameras=("front",),
        policy_overrides=crop,
        frame_cache_mb=1,
        num_workers=20,
    )
    assert 2**20 // 20 // (HEIGHT * WIDTH * 3) == 2
    assert _frame_cache_frames(dataset, config, per_worker) == 2
    state_only = policy_config_for(dataset, settings(tmp_path / "ds", tmp_path / "ck"))
    assert _frame_cache_frames(dataset, state_only, image_run) == 0


def test_a_negative_frame_cache_is_refused(reach_dataset, tmp_path):
    with pytest.raises(ValueError, match="frame_cache_mb"):
        train(settings(reach_dataset, tmp_path / "ck", frame_cache_mb=-1), progress=False)
