"""Datasets that round-trip with the real LeRobot 0.6, both ways (issue 21's acceptance).

Each test writes with one side and reads with the other, on push episodes with an AV1 camera:
LeRobot's `LeRobotDataset` (pyav decoding), `resume()`, `lerobot-edit-dataset merge` and
`lerobot-train` with QUANTILES normalization against our `collect`, `dataset merge` and reader.
Frames are compared value for value: numbers exactly, decoded pixels within one grey level.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import (
    OUR_VENV,
    collect,
    copy_episodes,
    lerobot_cli,
    lerobot_features,
    our_python,
    ours,
)
from lerobot.datasets.compute_stats import aggregate_stats
from lerobot.datasets.lerobot_dataset import LeRobotDataset

BACKEND = "pyav"  # torchcodec needs the system's FFmpeg libraries; PyAV carries its own
CAMERA = "observation.images.front"
QUANTILE_KEYS = ("q01", "q10", "q50", "q90", "q99")
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)

# Our reader's view of a dataset: episodes, lengths, every number, the camera's frames.
OUR_VIEW = """
import json, sys
import numpy as np
from robot_policy.data import LeRobotDataset
ds = LeRobotDataset(sys.argv[1])
eps = [ds.episode(e) for e in range(ds.info["total_episodes"])]
print(json.dumps({
    "lengths": [len(ep["index"]) for ep in eps],
    "state": np.concatenate([ep["observation.state"] for ep in eps]).tolist(),
    "action": np.concatenate([ep["action"] for ep in eps]).tolist(),
    "pixels": np.concatenate([ep["observation.images.front"] for ep in eps]).tolist(),
    "stats_keys": sorted(ds.stats["action"]),
}))
"""


def load(root: Path) -> LeRobotDataset:
    return LeRobotDataset("local/" + root.name, root=root, video_backend=BACKEND)


def lerobot_view(ds: LeRobotDataset) -> dict:
    """What LeRobot reads: the same fields as OUR_VIEW, every frame decoded."""
    items = [ds[i] for i in range(len(ds))]
    lengths = np.diff(
        np.stack([ds.meta.episodes["dataset_from_index"], ds.meta.episodes["dataset_to_index"]]),
        axis=0,
    )
    return {
        "lengths": lengths.ravel().tolist(),
        "state": np.stack([it["observation.state"].numpy() for it in items]),
        "action": np.stack([it["action"].numpy() for it in items]),
        "pixels": np.stack(
            [np.round(it[CAMERA].numpy().transpose(1, 2, 0) * 255) for it in items]
        ).astype(np.int16),
    }


def assert_same_frames(root: Path) -> dict:
    """LeRobot and our reader load `root` and agree on every frame; returns our view."""
    theirs = lerobot_view(load(root))
    mine = our_python(OUR_VIEW, str(root))
    assert theirs["lengths"] == mine["lengths"]
    np.testing.assert_array_equal(theirs["state"], np.asarray(mine["state"], np.float32))
    np.testing.assert_array_equal(theirs["action"], np.asarray(mine["action"], np.float32))
    pixels = np.asarray(mine["pixels"], np.int16)
    assert np.abs(theirs["pixels"] - pixels).max() <= 1
    return mine


def lerobot_made(root: Path, source: Path, episodes: list[int]) -> Path:
    """A dataset LeRobot itself records (its own writer and encoder), episodes copied from ours."""
    src = load(source)
    dst = LeRobotDataset.create(
        "local/" + root.name, fps=src.fps, features=lerobot_features(source), root=root,
        robot_type=src.meta.robot_type, use_videos=True,
    )  # fmt: skip
    copy_episodes(src, dst, episodes)
    dst.finalize()
    return root


def test_lerobot_reads_ours_with_chunks(ours_dataset):
    ds = LeRobotDataset(
        "local/push", root=ours_dataset, video_backend=BACKEND,
        delta_timestamps={"action": [k / 10 for k in range(16)], CAMERA: [-0.1, 0.0]},
    )  # fmt: skip
    item = ds[len(ds) - 1]
    assert tuple(item["action"].shape) == (16, 8)
    assert tuple(item[CAMERA].shape) == (2, 3, 96, 96)
    assert item["action_is_pad"][1:].all()  # the last frame: everything after it is padding
    assert set(QUANTILE_KEYS) <= set(ds.meta.stats["action"])
    assert_same_frames(ours_dataset)


def test_our_collect_appends_to_a_lerobot_made_dataset(ours_dataset, tmp_path):
    root = lerobot_made(tmp_path / "made", ours_dataset, [0])
    made_info = json.loads((root / "meta/info.json").read_text())
    collect(root, episodes=2, seed=7)
    ds = load(root)
    assert ds.meta.total_episodes == 3 and len(ds) == ds.meta.total_frames
    assert set(QUANTILE_KEYS) <= set(ds.meta.stats[CAMERA])
    info = json.loads((root / "meta/info.json").read_text())
    assert info["features"] == made_info["features"]  # LeRobot's own video info kept as it was
    assert_same_frames(root)


def test_lerobot_resume_appends_to_ours_and_ours_appends_after(ours_copy):
    ds = LeRobotDataset.resume("local/ours", root=ours_copy, video_backend=BACKEND)
    copy_episodes(load(ours_copy), ds, [1])
    ds.finalize()
    assert load(ours_copy).meta.total_episodes == 3
    assert_same_frames(ours_copy)
    collect(ours_copy, episodes=1, seed=11)  # and ours again, after LeRobot's
    ds = load(ours_copy)
    assert ds.meta.total_episodes == 4
    mine = assert_same_frames(ours_copy)
    assert set(QUANTILE_KEYS) <= set(mine["stats_keys"])


def test_lerobot_merge_of_ours_with_lerobots(ours_dataset, tmp_path):
    made = lerobot_made(tmp_path / "made", ours_dataset, [1])
    out = tmp_path / "merged"
    done = subprocess.run(
        [lerobot_cli("lerobot-edit-dataset"), "--new_repo_id", "local/merged",
         "--new_root", str(out), "--operation.type", "merge",
         "--operation.repo_ids", "['local/ours', 'local/made']",
         "--operation.roots", f"['{ours_dataset}', '{made}']"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert load(out).meta.total_episodes == 3
    assert_same_frames(out)


def assert_stats_aggregate_episodes(root: Path) -> dict:
    """stats.json carries every quantile and is LeRobot's own aggregation of the episode rows."""
    ds = load(root)
    # LeRobot's metadata drops the stats/* columns at load; read them as its aggregation does.
    paths = sorted(root.glob("meta/episodes/*/*.parquet"))
    rows = [row for p in paths for row in pq.read_table(p).to_pylist()]  # nested lists as stored
    assert len(rows) == ds.meta.total_episodes
    per_episode = [
        {key: {name: np.array(row[f"stats/{key}/{name}"], np.float64) for name in STAT_NAMES}
         for key in lerobot_features(root)}
        for row in rows
    ]  # fmt: skip
    want = aggregate_stats(per_episode)
    for key, ft in want.items():
        for name in STAT_NAMES:
            got = np.asarray(ds.meta.stats[key][name], np.float64)
            np.testing.assert_allclose(got, np.asarray(ft[name]).reshape(got.shape),
                                       rtol=1e-6, atol=1e-9, err_msg=f"{key} {name}")  # fmt: skip
    return ds.meta.stats


def test_our_merge_and_recompute_keep_lerobots_quantiles(ours_dataset, tmp_path):
    made = lerobot_made(tmp_path / "made", ours_dataset, [0, 1])
    out = tmp_path / "merged"
    ours("dataset", "merge", str(made), str(ours_dataset), "--out", str(out))
    merged = assert_stats_aggregate_episodes(out)
    made_stats = load(made).meta.stats
    ours("dataset", "recompute-stats", str(out))
    recomputed = assert_stats_aggregate_episodes(out)
    # Recomputing replaces LeRobot's sampled estimates with exact ones: close, not equal.
    for q in ("q01", "q99"):
        np.testing.assert_allclose(recomputed["action"][q], merged["action"][q], atol=0.05)
    assert set(made_stats) == set(merged) == set(recomputed)
    assert_same_frames(out)


@pytest.mark.parametrize("policy", ["act", "diffusion"])
def test_lerobot_trains_on_ours_with_quantiles(ours_dataset, tmp_path, policy):
    quantiles = (
        '{"VISUAL": "QUANTILES", "STATE": "QUANTILES", "ENV": "QUANTILES", "ACTION": "QUANTILES"}'
    )
    out = tmp_path / "train"
    args = [
        lerobot_cli("lerobot-train"), f"--policy.type={policy}", "--policy.device=cpu",
        "--policy.push_to_hub=false", f"--policy.normalization_mapping={quantiles}",
        "--dataset.repo_id=local/push", f"--dataset.root={ours_dataset}",
        f"--dataset.video_backend={BACKEND}", "--steps=2", "--batch_size=2", "--num_workers=0",
        "--policy.pretrained_backbone_weights=null",  # ImageNet weights would be a download
        "--log_freq=1", "--save_checkpoint=false", "--wandb.enable=false", f"--output_dir={out}",
    ]  # fmt: skip
    if policy == "diffusion":
        args += ["--policy.crop_shape=[84,84]", "--policy.horizon=16", "--policy.n_action_steps=8"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    losses = [float(tok.split(":")[1]) for tok in log.split() if tok.startswith("loss:")]
    assert losses and all(np.isfinite(losses)), log[-2000:]


def test_our_venv_is_the_one_tested():
    """The other side of every round trip is this checkout, not an installed copy elsewhere."""
    src = our_python("import json, robot_policy; print(json.dumps(robot_policy.__file__))")
    assert Path(src).resolve().is_relative_to(Path(__file__).resolve().parents[2])
    assert shutil.which("robot-policy", path=str(OUR_VENV / "bin"))
