"""Our datasets against what LeRobot's v3.0 reader requires, without LeRobot installed.

The requirements were read from huggingface/lerobot at commit 7427f31 (src/lerobot/datasets/:
utils.py `DatasetInfo`, io_utils.py `load_info`/`load_tasks`/`load_episodes`/`load_stats`/
`load_nested_dataset`, feature_utils.py `get_hf_features_from_features`, dataset_reader.py,
compute_stats.py `_assert_type_and_shape`/`aggregate_feature_stats`, video_utils.py
`decode_video_frames_pyav`, lerobot/utils/constants.py `DEFAULT_FEATURES`). Each check below
does what that code does, with the same libraries (`datasets`, pandas, PyAV), on datasets made
by each of our writing paths: the recorder, the edit tools (merge + delete-episodes) and
recompute-stats. `make test-lerobot` (compat/lerobot) runs the same round trips with the real
lerobot 0.6.1, in its own environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import datasets
import numpy as np
import pandas as pd
import pytest
from test_data_common import write_dataset

from robot_policy.data import LeRobotDataset
from robot_policy.data.edit import delete_episodes, merge, recompute_stats

# DatasetInfo's fields; from_dict warns about (and drops) any other key.
INFO_FIELDS = {
    "codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks",
    "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path",
    "robot_type", "splits", "tools",
}  # fmt: skip
DEFAULT_FEATURES = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
# What get_video_info writes for a video feature (is_depth_map may also be the legacy key).
VIDEO_INFO = {
    "video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps", "video.channels",
}  # fmt: skip
# Columns dataset_reader.py / dataset_metadata.py read from each episode row.
EPISODE_COLUMNS = {
    "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
    "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index",
    "meta/episodes/file_index",
}  # fmt: skip
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s


@pytest.fixture(scope="module", params=["recorded", "edited", "recomputed"])
def root(request, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp(request.param)
    write_dataset(base / "a", [6, 9, 5], codec="libsvtav1", robot_type="panda")
    if request.param == "recorded":
        return base / "a"
    write_dataset(base / "b", [7, 4], codec="libsvtav1", first_seed=5, robot_type="panda")
    merge([base / "a", base / "b"], base / "m")
    delete_episodes(base / "m", [1], base / "edited")
    if request.param == "recomputed":
        recompute_stats(base / "edited")
    return base / "edited"


def load_info(root: Path) -> dict:
    """DatasetInfo.from_dict's checks, plus the shape-to-tuple conversion it does."""
    info = json.loads((root / "meta/info.json").read_text())
    assert set(info) <= INFO_FIELDS, set(info) - INFO_FIELDS
    assert info["codebase_version"] == "v3.0"
    assert isinstance(info["fps"], int) and info["fps"] > 0
    for field in ("chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
        assert info[field] > 0, field
    for ft in info["features"].values():
        ft["shape"] = tuple(ft["shape"])
    return info


def hf_features(features: dict) -> datasets.Features:
    """get_hf_features_from_features for the kinds we write (videos are not in the parquet)."""
    out = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        value = datasets.Value(dtype=ft["dtype"])
        out[key] = value if ft["shape"] == (1,) else datasets.Sequence(value, length=ft["shape"][0])
    return datasets.Features(out)


def test_info_json_has_the_fields_and_features_lerobot_reads(root):
    info = load_info(root)
    features = info["features"]
    for key, dtype in DEFAULT_FEATURES.items():
        assert features[key] == {"dtype": dtype, "shape": (1,), "names": None}
    for key, ft in features.items():
        assert "/" not in key and set(ft) >= {"dtype", "shape", "names"}
        if ft["dtype"] == "video":
            assert key.startswith("observation.images.") and len(ft["shape"]) == 3
            assert ft["shape"][2] == 3 and set(ft["info"]) >= VIDEO_INFO
            assert ft["info"]["video.fps"] == info["fps"]
            assert not (ft["info"].get("is_depth_map") or ft["info"].get("video.is_depth_map"))
        else:
            np.dtype(ft["dtype"])  # a valid numpy dtype string
            assert len(ft["shape"]) == 1
    data_file = info["data_path"].format(chunk_index=0, file_index=0)
    assert data_file == "data/chunk-000/file-000.parquet"
    assert info["video_path"].format(video_key="k", chunk_index=1, file_index=2) == (
        "videos/k/chunk-001/file-002.mp4"
    )
    assert info["splits"] == {"train": f"0:{info['total_episodes']}"}


def test_data_parquet_loads_with_datasets_like_lerobot(root):
    info = load_info(root)
    paths = sorted(str(p) for p in (root / "data").glob("*/*.parquet"))
    hf = datasets.Dataset.from_parquet(paths, features=hf_features(info["features"]))
    assert len(hf) == info["total_frames"]
    ours = LeRobotDataset(root)
    table = hf.with_format("numpy")[:]
    for key in hf.features:
        np.testing.assert_array_equal(np.asarray(table[key]), ours.column(key), err_msg=key)
    np.testing.assert_array_equal(table["index"], np.arange(info["total_frames"]))
    fps = info["fps"]
    np.testing.assert_allclose(table["timestamp"], table["frame_index"] / fps, atol=1e-6)


def test_episode_table_is_what_the_reader_indexes(root):
    info = load_info(root)
    paths = sorted(str(p) for p in (root / "meta/episodes").glob("*/*.parquet"))
    episodes = datasets.Dataset.from_parquet(paths)
    cameras = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    wanted = EPISODE_COLUMNS | {f"videos/{k}/{c}" for k in cameras for c in VIDEO_COLUMNS}
    assert wanted <= set(episodes.column_names)
    episodes = episodes.select_columns([c for c in episodes.column_names if "stats/" not in c])
    assert len(episodes) == info["total_episodes"]
    start = 0
    for i in range(len(episodes)):
        ep = episodes[i]  # LeRobot indexes rows by episode index
        assert ep["episode_index"] == i and ep["dataset_from_index"] == start
        assert ep["dataset_to_index"] - start == ep["length"] and ep["tasks"]
        start = ep["dataset_to_index"]
    assert start == info["total_frames"]


def test_tasks_load_with_pandas_like_lerobot(root):
    info = load_info(root)
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    tasks.index.name = "task"
    assert len(tasks) == info["total_tasks"]
    ours = LeRobotDataset(root)
    for index, task in enumerate(ours.tasks):
        assert tasks.iloc[index].name == task  # how the reader turns task_index into text
        assert int(tasks.loc[task].task_index) == index  # how the writer looks tasks up


def test_stats_pass_lerobots_shape_checks_and_aggregate_from_episodes(root):
    info = load_info(root)
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    for key, ft_stats in stats.items():
        assert set(ft_stats) >= {"min", "max", "mean", "std", "count"}
        for name, value in ft_stats.items():
            array = np.atleast_1d(np.array(value))  # cast_stats_to_numpy
            if name == "count":
                assert array.shape == (1,)
            elif "image" in key:
                assert array.shape == (3, 1, 1), (key, name)
            else:
                assert array.shape == tuple(info["features"][key]["shape"]), (key, name)
    # aggregate_feature_stats over the episode rows gives stats.json back.
    paths = sorted(str(p) for p in (root / "meta/episodes").glob("*/*.parquet"))
    rows = datasets.Dataset.from_parquet(paths)  # plain lists: float64 as stored
    for key, ft_stats in stats.items():
        counts = np.array(rows[f"stats/{key}/count"], dtype=np.float64)
        means = np.array(rows[f"stats/{key}/mean"])
        stds = np.array(rows[f"stats/{key}/std"])
        while counts.ndim < means.ndim:
            counts = counts[..., None]
        mean = (means * counts).sum(0) / counts.sum(0)
        var = ((stds**2 + (means - mean) ** 2) * counts).sum(0) / counts.sum(0)
        np.testing.assert_allclose(ft_stats["mean"], mean, rtol=1e-9, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(ft_stats["std"], np.sqrt(var), rtol=1e-7, atol=1e-9)
        assert ft_stats["count"] == [int(counts.sum(0).ravel()[0])]
        for name in ("q01", "q10", "q50", "q90", "q99"):  # 0.6.1: count-weighted
            quantile = (np.array(rows[f"stats/{key}/{name}"]) * counts).sum(0) / counts.sum(0)
            np.testing.assert_allclose(ft_stats[name], quantile, rtol=1e-9, atol=1e-12)


def decode_like_lerobot(path: Path, timestamps: list[float]) -> np.ndarray:
    """decode_video_frames_pyav: seek to the keyframe before the first timestamp, decode on,
    then take for each query the closest frame, which must be within TOLERANCE_S."""
    frames, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        offset = round(min(timestamps) / stream.time_base) - 1
        container.seek(offset, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            times.append(float(frame.pts * stream.time_base))
            frames.append(frame.to_ndarray(format="rgb24"))
            if times[-1] >= max(timestamps):
                break
    distance = np.abs(np.asarray(timestamps)[:, None] - np.asarray(times)[None, :])
    assert distance.min(axis=1).max() <= TOLERANCE_S, distance.min(axis=1).max()
    return np.stack([frames[i] for i in distance.argmin(axis=1)])


def test_video_frames_are_found_by_lerobots_timestamp_lookup(root):
    info = load_info(root)
    ours = LeRobotDataset(root)
    for key in ours.camera_keys:
        assert info["features"][key]["info"]["video.codec"] == "av1"  # LeRobot's default
        for e, ep in enumerate(ours.episodes):
            start, end = ours.episode_bounds(e)
            path = root / info["video_path"].format(
                video_key=key,
                chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"],
            )
            shifted = [ep[f"videos/{key}/from_timestamp"] + float(t)
                       for t in ours.column("timestamp")[start:end]]  # fmt: skip
            frames = decode_like_lerobot(path, shifted)
            np.testing.assert_array_equal(frames, ours.episode(e)[key])
