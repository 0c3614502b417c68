"""Bad input is refused with errors that say what is wrong, and nothing half-written remains."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_data_common import CAMERA, FEATURES, FPS, frame, record, write_dataset

from robot_policy.data import (
    DatasetFormatError,
    DatasetLockedError,
    DatasetMismatchError,
    DatasetWriter,
    LeRobotDataset,
    describe,
)

NOT_UINT8 = f"{CAMERA}: camera frames must be uint8"


def _bad(key: str, value) -> dict:
    good = frame(0, 0)
    good[key] = value
    return good


@pytest.mark.parametrize(
    ("bad_frame", "message"),
    [
        ({k: v for k, v in frame(0, 0).items() if k != "action"}, "missing ['action']"),
        ({**frame(0, 0), "observation.extra": np.zeros(2)}, "extra ['observation.extra']"),
        ({**frame(0, 0), "index": 3}, "extra ['index']"),
        (_bad("observation.state", np.zeros(7, np.float32)), "observation.state: expected shape"),
        (_bad("action", np.array([np.nan] * 8, np.float32)), "action: non-finite"),
        (_bad("action", np.full(8, np.inf)), "action: non-finite"),
        (_bad("observation.environment_state", np.array([1e39, 0, 0])), "non-finite"),
        (_bad("action", np.array(["a"] * 8)), "action: expected float32 values"),
        (_bad(CAMERA, frame(0, 0)[CAMERA].astype(np.float32)), NOT_UINT8),
        (_bad(CAMERA, frame(0, 0)[CAMERA][:, :, :2].copy()), f"{CAMERA}: expected image shape"),
        (_bad(CAMERA, frame(0, 0)[CAMERA].tolist()), NOT_UINT8),
    ],
)
def test_bad_frames_are_rejected_and_nothing_is_written(tmp_path, bad_frame, message):
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="libx264") as w:
        w.add_frame(frame(0, 0), task="t")
        with pytest.raises(ValueError, match=re.escape(message)):
            w.add_frame(bad_frame, task="t")
        assert w.episode_frames == 1
        w.add_frame(frame(0, 1), task="t")
        w.save_episode()
    ds = LeRobotDataset(tmp_path)
    assert ds.num_frames == 2
    np.testing.assert_array_equal(ds.column("action")[1], frame(0, 1)["action"])


def test_bad_task_and_empty_save(tmp_path):
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="libx264") as w:
        with pytest.raises(ValueError, match="task must be a non-empty string"):
            w.add_frame(frame(0, 0), task="")
        with pytest.raises(ValueError, match="no frames"):
            w.save_episode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fps": 30}, "fps 10 in the dataset, 30 requested"),
        (
            {"features": {**FEATURES, "action": {"dtype": "float32", "shape": [7], "names": None}}},
            "feature 'action': dataset has dtype float32 shape \\[8\\], requested dtype float32 "
            "shape \\[7\\]",
        ),
        (
            {
                "features": {
                    k: v for k, v in FEATURES.items() if k != "observation.environment_state"
                }
            },
            "feature 'observation.environment_state': dataset has .*requested no such feature",
        ),
        ({"video_codec": "libsvtav1"}, "video codec \\['h264'\\] in the dataset"),
        ({"robot_type": "ur5"}, "robot_type 'panda' in the dataset, 'ur5' requested"),
    ],
)
def test_appending_with_different_settings_names_the_difference(tmp_path, change, message):
    write_dataset(tmp_path, [3], robot_type="panda")
    args = {"fps": FPS, "features": FEATURES, "robot_type": "panda", **change}
    with pytest.raises(DatasetMismatchError, match=message):
        DatasetWriter(tmp_path, **args)
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES) as w:  # the lock was released
        record(w, 1, 2)
    assert LeRobotDataset(tmp_path).num_episodes == 2


def test_invalid_feature_declarations(tmp_path):
    with pytest.raises(ValueError, match="must not contain '/'"):
        DatasetWriter(tmp_path, fps=FPS, features={"a/b": {"dtype": "float32", "shape": [2]}})
    with pytest.raises(ValueError, match="filled in by the writer"):
        DatasetWriter(tmp_path, fps=FPS, features={"timestamp": {"dtype": "float32", "shape": [1]}})
    with pytest.raises(ValueError, match="even height"):
        DatasetWriter(tmp_path, fps=FPS, features={"cam": {"dtype": "image", "shape": [5, 4, 3]}})
    with pytest.raises(ValueError, match="not available"):
        DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="no-such-codec")


def test_close_with_unsaved_episode_warns_and_discards(tmp_path):
    w = DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="libx264")
    record(w, 0, 3)
    w.add_frame(frame(1, 0), task="t")
    with pytest.warns(UserWarning, match="unsaved episode of 1 frames"):
        w.close()
    assert not (tmp_path / ".recording").exists()
    assert LeRobotDataset(tmp_path).num_episodes == 1


def test_discard_episode_drops_only_the_episode_in_progress(tmp_path):
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="libx264") as w:
        record(w, 0, 3)
        w.add_frame(frame(9, 0), task="t")
        w.discard_episode()
        assert w.episode_frames == 0
        assert record(w, 1, 4) == 1
    ds = LeRobotDataset(tmp_path)
    assert ds.num_frames == 7
    np.testing.assert_array_equal(ds.episode(1)["action"][0], frame(1, 0)["action"])


def test_discarding_an_av1_episode_is_silent(tmp_path, capfd):
    # The default encoder (SVT-AV1) printed an error per discarded episode when closed
    # mid-stream; collect discards every failed attempt.
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES) as w:
        for step in range(4):
            w.add_frame(frame(0, step), task="t")
        w.discard_episode()
        assert record(w, 1, 3) == 0
    assert "EOS" not in capfd.readouterr().err
    assert LeRobotDataset(tmp_path).num_frames == 3


def test_one_writer_at_a_time(tmp_path):
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES, video_codec="libx264"):
        with pytest.raises(DatasetLockedError):
            DatasetWriter(tmp_path, fps=FPS, features=FEATURES)


def test_empty_dataset_reads(tmp_path):
    DatasetWriter(tmp_path, fps=FPS, features=FEATURES).close()
    ds = LeRobotDataset(tmp_path)
    assert (ds.num_episodes, ds.num_frames, len(ds)) == (0, 0, 0)
    assert describe(tmp_path)["episodes"] == 0


@pytest.mark.parametrize(
    "target", ["meta/info.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet"]
)
@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_corrupt_or_missing_meta_files_are_named(tmp_path, target, damage):
    write_dataset(tmp_path, [3])
    path = tmp_path / target
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"\x00not what it should be")
    for read in (describe, LeRobotDataset):
        with pytest.raises(DatasetFormatError, match=str(path)):
            read(tmp_path)


def test_missing_data_or_video_file_is_named(tmp_path):
    write_dataset(tmp_path, [3])
    video = tmp_path / f"videos/{CAMERA}/chunk-000/file-000.mp4"
    video.unlink()
    with pytest.raises(DatasetFormatError, match=str(video)):
        describe(tmp_path)
    with pytest.raises(DatasetFormatError, match=str(video)):
        LeRobotDataset(tmp_path)[0]


def test_info_with_missing_fields_is_named(tmp_path):
    write_dataset(tmp_path, [2])
    info_path = tmp_path / "meta/info.json"
    info = json.loads(info_path.read_text())
    del info["fps"]
    info_path.write_text(json.dumps(info))
    with pytest.raises(DatasetFormatError, match="field 'fps'"):
        describe(tmp_path)
