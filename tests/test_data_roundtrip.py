"""Writer -> files -> reader: values, layout, metadata and stats as LeRobot v3.0 has them."""

from __future__ import annotations

import json
import threading

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data_common import CAMERA, FEATURES, FPS, HEIGHT, WIDTH, frame, image, task_of
from test_data_common import write_dataset as write

from robot_policy.data import DatasetWriter, LeRobotDataset, describe
from robot_policy.runtime.rate_loop import realtime_priority
from robot_policy.threads import REALTIME, scheduling, thread_ids

LENGTHS = [12, 7, 15]
NUMERIC = ("observation.state", "observation.environment_state", "action")
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
STATS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")  # LeRobot 0.6


@pytest.fixture(scope="module", params=["libsvtav1", "libx264"])
def dataset(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    write(root, LENGTHS, codec=request.param, robot_type="panda")
    return root, request.param


def test_numeric_columns_round_trip_exactly(dataset):
    ds = LeRobotDataset(dataset[0])
    assert (ds.num_episodes, ds.num_frames) == (len(LENGTHS), sum(LENGTHS))
    for e, length in enumerate(LENGTHS):
        ep = ds.episode(e)
        for key in NUMERIC:
            expected = np.stack([frame(e, t)[key] for t in range(length)])
            np.testing.assert_array_equal(ep[key], expected)
            assert ep[key].dtype == np.float32
        np.testing.assert_array_equal(ep["frame_index"], np.arange(length))
        np.testing.assert_array_equal(ep["episode_index"], np.full(length, e))
        np.testing.assert_allclose(ep["timestamp"], np.arange(length) / FPS, rtol=1e-6)
        assert ds.tasks[int(ep["task_index"][0])] == task_of(e)


def test_video_frames_round_trip_within_lossy_tolerance(dataset):
    ds = LeRobotDataset(dataset[0])
    for e, length in enumerate(LENGTHS):
        decoded = ds.episode(e)[CAMERA]
        assert decoded.shape == (length, HEIGHT, WIDTH, 3) and decoded.dtype == np.uint8
        expected = np.stack([image(e, t) for t in range(length)]).astype(np.int16)
        assert np.abs(decoded.astype(np.int16) - expected).mean() < 8
    # Single frames by global index agree with whole-episode decoding.
    start, _ = ds.episode_bounds(2)
    item = ds[start + 5]
    np.testing.assert_array_equal(item[CAMERA], ds.episode(2)[CAMERA][5])
    assert item["task"] == task_of(2) and item["index"] == start + 5


def test_episode_metadata_is_contiguous_and_matches_video(dataset):
    root, _ = dataset
    ds = LeRobotDataset(root)
    start, video_t = 0, 0.0
    for e, (meta, length) in enumerate(zip(ds.episodes, LENGTHS, strict=True)):
        assert meta["episode_index"] == e and meta["length"] == length
        assert (meta["dataset_from_index"], meta["dataset_to_index"]) == (start, start + length)
        assert meta[f"videos/{CAMERA}/from_timestamp"] == pytest.approx(video_t)
        assert meta[f"videos/{CAMERA}/to_timestamp"] == pytest.approx(video_t + length / FPS)
        assert meta["tasks"] == [task_of(e)]
        start, video_t = start + length, video_t + length / FPS
    np.testing.assert_array_equal(ds.column("index"), np.arange(sum(LENGTHS)))
    with av.open(str(root / f"videos/{CAMERA}/chunk-000/file-000.mp4")) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(video_t)
        assert sum(1 for p in container.demux(stream) if p.size) == sum(LENGTHS)


def test_info_json_and_parquet_schemas_match_features(dataset):
    root, codec = dataset
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "panda"
    assert info["fps"] == FPS and info["total_tasks"] == 2
    assert (info["total_episodes"], info["total_frames"]) == (3, sum(LENGTHS))
    assert info["splits"] == {"train": "0:3"}
    assert info["chunks_size"] == 1000
    assert (info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (100, 200)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    cam = info["features"][CAMERA]
    assert cam["dtype"] == "video" and cam["shape"] == [HEIGHT, WIDTH, 3]
    assert cam["info"] == {
        "video.height": HEIGHT,
        "video.width": WIDTH,
        "video.codec": {"libsvtav1": "av1", "libx264": "h264"}[codec],
        "video.pix_fmt": "yuv420p",
        "video.fps": FPS,
        "video.channels": 3,
        "has_audio": False,
        "is_depth_map": False,  # LeRobot 0.6's key (0.4 wrote video.is_depth_map)
    }
    for key in BOOKKEEPING:
        assert info["features"][key]["shape"] == [1]
    assert info["features"]["observation.state"]["names"] == FEATURES["observation.state"]["names"]

    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert schema.names == [*NUMERIC, *BOOKKEEPING]
    for key in NUMERIC:
        kind = schema.field(key).type
        assert str(kind.value_type) == "float" and kind.list_size == FEATURES[key]["shape"][0]
    assert str(schema.field("timestamp").type) == "float"
    assert all(str(schema.field(k).type) == "int64" for k in schema.names[4:])

    episodes = pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet").names
    video_columns = [f"videos/{CAMERA}/{c}" for c in ("chunk_index", "file_index")]
    video_columns += [f"videos/{CAMERA}/{c}" for c in ("from_timestamp", "to_timestamp")]
    stats_columns = [f"stats/{k}/{s}" for k in info["features"] for s in STATS]
    assert episodes == [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        *video_columns,
        *stats_columns,
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ]
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column_names == ["task_index", "task"]
    assert b"pandas" in tasks.schema.metadata  # pandas.read_parquet indexes by task


def test_stats_equal_numpy_over_all_frames(dataset):
    ds = LeRobotDataset(dataset[0])
    for key in NUMERIC:
        values = ds.column(key).astype(np.float64)
        got = ds.stats[key]
        np.testing.assert_allclose(got["mean"], values.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got["std"], values.std(0), rtol=1e-9)
        np.testing.assert_array_equal(got["min"], values.min(0))
        np.testing.assert_array_equal(got["max"], values.max(0))
        assert got["count"].tolist() == [sum(LENGTHS)]
    frames = np.concatenate([[image(e, t) for t in range(n)] for e, n in enumerate(LENGTHS)])
    pixels = frames.reshape(-1, 3).astype(np.float64) / 255
    cam = ds.stats[CAMERA]
    assert cam["mean"].shape == (3, 1, 1) and cam["count"].tolist() == [sum(LENGTHS)]
    np.testing.assert_allclose(cam["mean"].ravel(), pixels.mean(0), rtol=1e-10)
    np.testing.assert_allclose(cam["std"].ravel(), pixels.std(0), rtol=1e-8)
    np.testing.assert_allclose(cam["min"].ravel(), pixels.min(0))
    np.testing.assert_allclose(ds.stats["frame_index"]["max"], [max(LENGTHS) - 1])


def test_append_across_writer_sessions(tmp_path):
    write(tmp_path, [5, 6])
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES) as w:  # codec taken from the data
        assert (w.num_episodes, w.num_frames) == (2, 11)
        for t in range(4):
            w.add_frame(frame(2, t), task="a third task")
        assert w.save_episode() == 2
    ds = LeRobotDataset(tmp_path)
    assert ds.num_frames == 15 and ds.tasks[-1] == "a third task" and len(ds.tasks) == 3
    np.testing.assert_array_equal(
        ds.episode(2)["observation.state"][3], frame(2, 3)["observation.state"]
    )
    assert ds.episodes[2][f"videos/{CAMERA}/from_timestamp"] == pytest.approx(1.1)
    appended = np.stack([image(2, t) for t in range(4)]).astype(int)
    assert np.abs(ds.episode(2)[CAMERA].astype(int) - appended).mean() < 8
    all_states = ds.column("observation.state").astype(np.float64)
    np.testing.assert_allclose(ds.stats["observation.state"]["std"], all_states.std(0), rtol=1e-9)


@pytest.mark.parametrize("layout", ["foreign column", "written before quantiles"])
def test_appending_keeps_the_episode_tables_layout(tmp_path, layout):
    """A table LeRobot wrote carries columns we do not know (`collect --out` into it failed on a
    schema mismatch); one we wrote before quantiles existed has none. Appending keeps each
    file's columns, so every row of a file has the same ones, as LeRobot's loader needs."""
    write(tmp_path, [5])
    path = tmp_path / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    if layout == "foreign column":
        table = table.append_column("meta/extra", pa.array([[1.5, 2.5]]))
    else:
        table = table.drop_columns([n for n in table.column_names if n.split("/")[-1][0] == "q"])
    pq.write_table(table, path)
    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES) as w:
        for t in range(3):
            w.add_frame(frame(1, t), task=task_of(1))
        w.save_episode()
    after = pq.read_table(path)
    assert after.column_names == table.column_names and after.num_rows == 2
    if layout == "foreign column":
        assert after.column("meta/extra").to_pylist() == [[1.5, 2.5], None]
    ds = LeRobotDataset(tmp_path)
    assert ds.num_episodes == 2 and ds.num_frames == 8
    np.testing.assert_array_equal(ds.episode(1)["action"][2], frame(1, 2)["action"])


def test_files_roll_over_at_the_size_limit(tmp_path):
    write(tmp_path, [6, 6, 6], video_files_size_in_mb=1e-6, data_files_size_in_mb=1e-6)
    ds = LeRobotDataset(tmp_path)
    for e in range(3):
        meta = ds.episodes[e]
        assert (meta["data/file_index"], meta[f"videos/{CAMERA}/file_index"]) == (e, e)
        assert meta[f"videos/{CAMERA}/from_timestamp"] == 0.0
        assert np.abs(ds.episode(e)[CAMERA][5].astype(int) - image(e, 5)).mean() < 8
        np.testing.assert_array_equal(ds.episode(e)["action"][5], frame(e, 5)["action"])
    assert (tmp_path / f"videos/{CAMERA}/chunk-000/file-002.mp4").exists()


def test_describe_summarizes_the_folder(dataset):
    root, codec = dataset
    summary = describe(root)
    assert (summary["episodes"], summary["frames"], summary["fps"]) == (3, sum(LENGTHS), FPS)
    assert summary["robot_type"] == "panda"
    assert sorted(summary["tasks"]) == sorted({task_of(e) for e in range(3)})
    assert summary["episode_length"] == {"min": 7, "max": 15, "mean": sum(LENGTHS) / 3}
    assert summary["features"]["action"] == {"dtype": "float32", "shape": [8]}
    assert summary["cameras"][CAMERA]["codec"] == {"libsvtav1": "av1", "libx264": "h264"}[codec]
    assert summary["size_bytes"] > summary["cameras"][CAMERA]["size_bytes"] > 0
    json.dumps(summary)  # the CLI prints it as JSON


def test_reads_variable_size_lists_and_unnamed_task_index(tmp_path):
    """Other v3.0 writers (pandas, older `datasets`) store vectors as plain lists."""
    write(tmp_path, [4, 3])
    data_path = tmp_path / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data_path)
    loose = pa.schema(
        [
            pa.field(f.name, pa.list_(f.type.value_type))
            if pa.types.is_fixed_size_list(f.type)
            else f
            for f in table.schema
        ]
    )
    pq.write_table(table.cast(loose).replace_schema_metadata(None), data_path)
    tasks = pq.read_table(tmp_path / "meta/tasks.parquet")
    reordered = pa.table(
        {
            "task_index": tasks.column("task_index").to_pylist()[::-1],
            "__index_level_0__": tasks.column("task").to_pylist()[::-1],
        }
    )
    pq.write_table(reordered, tmp_path / "meta/tasks.parquet")
    ds = LeRobotDataset(tmp_path)
    np.testing.assert_array_equal(ds.episode(1)["action"][2], frame(1, 2)["action"])
    assert ds[5]["task"] == task_of(1)


def _realtime_threads() -> dict[int, tuple[int, int]]:
    found = {tid: scheduling(tid) for tid in thread_ids()}
    return {tid: s for tid, s in found.items() if s is not None and s[0] in REALTIME}


def test_encoding_leaves_no_thread_realtime(tmp_path):
    """SVT-AV1 raises its caller and workers to SCHED_FIFO 99 when the process may; a recorder
    would then encode ahead of the control loop. Where raising is permitted (root here), the
    writer must leave every thread as it found it."""
    with realtime_priority(1) as refused:
        pass
    if refused is not None:
        pytest.skip(f"this process cannot raise threads, so neither can the encoder: {refused}")
    before = _realtime_threads()
    write(tmp_path, [4, 3], codec="libsvtav1")
    after = _realtime_threads()
    assert threading.get_native_id() not in after and after == before
