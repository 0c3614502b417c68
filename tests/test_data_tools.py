"""Dataset edits (merge, split, delete-episodes, recompute-stats) and episode plots.

Edits must keep every kept frame exactly (numbers and, since videos are remuxed, decoded
pixels), give stats equal to those of the frames they hold, refuse bad input before writing
anything, and never leave a half-written result, even when killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data_common import CAMERA, FEATURES, FPS, frame, record, task_of, write_dataset

from robot_policy.cli import main
from robot_policy.data import (
    DatasetFormatError,
    DatasetLockedError,
    DatasetMismatchError,
    DatasetWriter,
    LeRobotDataset,
    describe,
)
from robot_policy.data import stats as stats_lib
from robot_policy.data.edit import (
    delete_episodes,
    merge,
    parse_episodes,
    recompute_stats,
    split,
    split_fractions,
)
from robot_policy.data.viz import plot_episode

NUMERIC = ("observation.state", "observation.environment_state", "action", "timestamp")
A_LENGTHS, B_LENGTHS = [9, 6, 11], [7, 8]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sources")
    write_dataset(root / "a", A_LENGTHS, robot_type="panda")
    write_dataset(root / "b", B_LENGTHS, first_seed=10, robot_type="panda")
    return root / "a", root / "b"


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def assert_same_episode(src: LeRobotDataset, e: int, dst: LeRobotDataset, f: int) -> None:
    a, b = src.episode(e), dst.episode(f)
    for key in (*NUMERIC, "frame_index"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a[CAMERA], b[CAMERA])  # remuxed: identical pixels
    assert src.tasks[a["task_index"][0]] == dst.tasks[b["task_index"][0]]


def assert_consistent(ds: LeRobotDataset) -> None:
    """Indices contiguous, numeric stats equal numpy over all frames, cameras' counts right."""
    np.testing.assert_array_equal(ds.column("index"), np.arange(ds.num_frames))
    for e in range(ds.num_episodes):
        start, end = ds.episode_bounds(e)
        np.testing.assert_array_equal(ds.column("episode_index")[start:end], e)
    for key in (*NUMERIC, "episode_index", "index", "task_index"):
        expected = stats_lib.numeric_stats(ds.column(key))
        for name in ("min", "max", "mean", "std", "count"):
            np.testing.assert_allclose(ds.stats[key][name], expected[name], rtol=1e-9, atol=1e-12)
    assert int(ds.stats[CAMERA]["count"][0]) == ds.num_frames
    assert ds.tasks == list(dict.fromkeys(ds.tasks))


def test_merge_concatenates_episodes_bit_exactly(sources, tmp_path):
    a, b = sources
    before = [_snapshot(a), _snapshot(b)]
    result = merge([a, b], tmp_path / "m")
    assert (result["episodes"], result["frames"]) == (5, sum(A_LENGTHS + B_LENGTHS))
    src_a, src_b, merged = LeRobotDataset(a), LeRobotDataset(b), LeRobotDataset(tmp_path / "m")
    for e in range(3):
        assert_same_episode(src_a, e, merged, e)
    for e in range(2):
        assert_same_episode(src_b, e, merged, 3 + e)
    assert_consistent(merged)
    # Camera stats are carried over: the merge's equal the exact combination of the sources'.
    combined = stats_lib.combine([src_a.stats[CAMERA], src_b.stats[CAMERA]])
    for name, value in combined.items():
        np.testing.assert_allclose(merged.stats[CAMERA][name], value, rtol=1e-12)
    assert describe(tmp_path / "m")["episodes"] == 5
    assert [_snapshot(a), _snapshot(b)] == before  # sources only read
    # The result is a normal dataset: the recorder can append to it.
    with DatasetWriter(tmp_path / "m", fps=FPS, features=FEATURES) as writer:
        record(writer, 20, 4)
    assert LeRobotDataset(tmp_path / "m").num_episodes == 6


def test_edits_roll_files_over_at_the_size_limits(tmp_path):
    tiny = {"data_files_size_in_mb": 0.001, "video_files_size_in_mb": 0.001}
    write_dataset(tmp_path / "a", [5, 6, 7], **tiny)
    merge([tmp_path / "a", tmp_path / "a"], tmp_path / "m")
    src, merged = LeRobotDataset(tmp_path / "a"), LeRobotDataset(tmp_path / "m")
    files = {(e["data/file_index"], e[f"videos/{CAMERA}/file_index"]) for e in merged.episodes}
    assert len(files) == 6  # every episode got its own data and video file
    for e in range(6):
        assert_same_episode(src, e % 3, merged, e)


def test_merge_refuses_incompatible_datasets(sources, tmp_path):
    a, _ = sources
    other = {**FEATURES, "observation.state": {"dtype": "float32", "shape": [7], "names": None}}
    with DatasetWriter(tmp_path / "narrow", fps=FPS, features=other, video_codec="libx264") as w:
        for t in range(3):
            sample = frame(0, t)
            w.add_frame({**sample, "observation.state": sample["observation.state"][:7]}, "t")
        w.save_episode()
    with DatasetWriter(tmp_path / "slow", fps=5, features=FEATURES, video_codec="libx264") as w:
        record(w, 0, 3)
    write_dataset(tmp_path / "av1", [3], codec="libsvtav1")
    cases = {
        "narrow": "feature 'observation.state'",
        "slow": "fps 5 vs 10",
        "av1": "video.codec 'av1' vs 'h264'",
    }
    for name, message in cases.items():
        with pytest.raises(DatasetMismatchError, match=message):
            merge([a, tmp_path / name], tmp_path / "out")
        assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="at least two"):
        merge([a], tmp_path / "out")
    with pytest.raises(ValueError, match="already exists"):
        merge([a, a], tmp_path / "narrow")


def test_remux_refuses_videos_from_different_encoders(sources, tmp_path):
    from robot_policy.data.video import SegmentMuxer

    write_dataset(tmp_path / "av1", [3], codec="libsvtav1")
    h264 = sources[0] / f"videos/{CAMERA}/chunk-000/file-000.mp4"
    av1 = tmp_path / f"av1/videos/{CAMERA}/chunk-000/file-000.mp4"
    muxer = SegmentMuxer(tmp_path / "out.mp4")
    muxer.add(h264, 0.0, 3, FPS, 0.0)
    with pytest.raises(ValueError, match="different codec parameters"):
        muxer.add(av1, 0.0, 3, FPS, 0.3)
    with pytest.raises(ValueError, match="does not start on a keyframe"):
        muxer.add(h264, 0.5, 2, FPS, 0.3)  # frame 5 (GOP 2: keyframes are the even frames)
    with pytest.raises(ValueError, match="2 video frames from 2.400 s, expected 5"):
        muxer.add(h264, 2.4, 5, FPS, 0.3)  # the file holds 26 frames
    muxer.close()


def test_delete_episodes_keeps_the_rest_renumbered(sources, tmp_path):
    a, _ = sources
    result = delete_episodes(a, [1], tmp_path / "d")
    assert (result["episodes"], result["frames"]) == (2, A_LENGTHS[0] + A_LENGTHS[2])
    src, out = LeRobotDataset(a), LeRobotDataset(tmp_path / "d")
    assert_same_episode(src, 0, out, 0)
    assert_same_episode(src, 2, out, 1)
    assert_consistent(out)
    assert task_of(0) == task_of(2) != task_of(1)
    assert out.tasks == [task_of(0)]  # episode 1's task went with it


@pytest.mark.parametrize(
    ("episodes", "message"),
    [([3], r"episodes \[3\] do not exist"), ([0, 0], "more than once"), ([0, 1, 2], "nothing")],
)
def test_delete_episodes_refuses_bad_indices(sources, tmp_path, episodes, message):
    with pytest.raises(ValueError, match=message):
        delete_episodes(sources[0], episodes, tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_split_by_fractions_and_by_episodes(sources, tmp_path):
    a, _ = sources
    assert split_fractions({"train": 0.67, "val": 0.33}, 3) == {"train": [0, 1], "val": [2]}
    split(a, tmp_path / "s", split_fractions({"train": 0.67, "val": 0.33}, 3))
    src = LeRobotDataset(a)
    train, val = LeRobotDataset(tmp_path / "s/train"), LeRobotDataset(tmp_path / "s/val")
    assert (train.num_episodes, val.num_episodes) == (2, 1)
    assert_same_episode(src, 1, train, 1)
    assert_same_episode(src, 2, val, 0)
    assert_consistent(val)
    split(a, tmp_path / "t", {"odd": [1], "rest": parse_episodes("0,2")})
    assert_same_episode(src, 2, LeRobotDataset(tmp_path / "t/rest"), 1)
    for parts, message in [
        ({"x": [0, 1], "y": [1]}, "more than one part"),
        ({"../up": [0]}, "plain folder name"),
        ({"x": [7]}, "do not exist"),
    ]:
        with pytest.raises(ValueError, match=message):
            split(a, tmp_path / "u", parts)
    assert not (tmp_path / "u").exists()
    with pytest.raises(ValueError, match="no episode"):
        split_fractions({"train": 0.9, "val": 0.1}, 3)


def test_parse_episodes():
    assert parse_episodes("0, 3,5-7") == [0, 3, 5, 6, 7]
    for bad in ("1,,2", "a", "5-3", "-1"):
        with pytest.raises(ValueError, match="bad episode"):
            parse_episodes(bad)


def test_recompute_stats_repairs_stats_in_place(sources, tmp_path):
    merge(list(sources), tmp_path / "m")
    root = tmp_path / "m"
    good = LeRobotDataset(root).stats
    (root / "meta/stats.json").write_text("{ not json")
    with pytest.raises(DatasetFormatError, match="stats.json"):
        LeRobotDataset(root)
    assert recompute_stats(root)["episodes"] == 5
    fixed = LeRobotDataset(root)
    assert_consistent(fixed)
    for key, ft in good.items():
        for name, value in ft.items():
            if key == CAMERA and (name in ("min", "max") or name[0] == "q"):
                continue  # extremes and envelopes of decoded (lossy) pixels differ from raw ones
            # Camera stats come from decoded pixels now, the recorder's from raw ones.
            tol = 0.01 if key == CAMERA and name != "count" else 1e-9
            np.testing.assert_allclose(fixed.stats[key][name], value, atol=tol, err_msg=key)
    assert not (root / ".pending").exists()
    with DatasetWriter(root, fps=FPS, features=FEATURES) as writer:  # still appendable
        with pytest.raises(DatasetLockedError):
            recompute_stats(root)
        record(writer, 30, 3)


def test_viz_writes_plots(sources, tmp_path):
    result = plot_episode(sources[0], 2, tmp_path / "viz", frames=4)
    names = sorted(Path(p).name for p in result["plots"])
    assert names == [
        "episode_000002_observation.environment_state.png",
        f"episode_000002_{CAMERA}.png",
        "episode_000002_state_action.png",
    ]
    import matplotlib.image

    for path in result["plots"]:
        assert matplotlib.image.imread(path).shape[0] > 100
    with pytest.raises(ValueError, match="episode 3 does not exist"):
        plot_episode(sources[0], 3, tmp_path / "viz")


def test_cli_dataset_commands(sources, tmp_path, capsys):
    a, b = sources

    def run(*args: str) -> dict:
        assert main(["dataset", *args, "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert run("merge", str(a), str(b), "--out", str(tmp_path / "m"))["episodes"] == 5
    parts = run("split", str(tmp_path / "m"), "--out", str(tmp_path / "s"), "--fractions",
                "train=0.6,val=0.4")["parts"]  # fmt: skip
    assert {k: v["episodes"] for k, v in parts.items()} == {"train": 3, "val": 2}
    out = str(tmp_path / "d")
    deleted = run("delete-episodes", str(tmp_path / "m"), "--episodes", "0-1", "--out", out)
    assert deleted["episodes"] == 3
    assert run("recompute-stats", out)["frames"] == A_LENGTHS[2] + sum(B_LENGTHS)
    assert len(run("viz", out, "--episode", "1", "--out", str(tmp_path / "v"))["plots"]) == 3
    assert main(["dataset", "delete-episodes", out, "--episodes", "7", "--out", out + "2"]) == 2
    assert "episodes [7] do not exist" in capsys.readouterr().err


CHILD = r"""
import os, signal, sys
from robot_policy.data import assemble, edit
add = assemble.EpisodeAssembler.add
def add_then_die(self, *args):
    episode = add(self, *args)
    if episode == 3:  # mid-way: files of four episodes already written
        os.kill(os.getpid(), signal.SIGKILL)
    return episode
assemble.EpisodeAssembler.add = add_then_die
edit.merge(sys.argv[1:3], sys.argv[3])
"""


def test_killed_merge_leaves_no_result_and_sources_intact(sources, tmp_path):
    a, b = sources
    before = [_snapshot(a), _snapshot(b)]
    out = tmp_path / "m"
    child = subprocess.run([sys.executable, "-c", CHILD, str(a), str(b), str(out)], check=False)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.partial-")
    assert [_snapshot(a), _snapshot(b)] == before
    assert merge([a, b], out)["episodes"] == 5  # the same edit simply runs again


def test_failed_edit_cleans_up(sources, tmp_path, monkeypatch):
    from robot_policy.data import assemble

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(assemble.SegmentMuxer, "add", broken)
    with pytest.raises(OSError, match="disk full"):
        merge(list(sources), tmp_path / "m")
    assert os.listdir(tmp_path) == []
