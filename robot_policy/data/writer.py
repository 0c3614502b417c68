"""Recording episodes into a LeRobot v3.0 dataset, one atomic commit per episode.

While an episode is recorded, camera frames stream into per-episode mp4 files under
`root/.recording/` and numeric values stay in memory (small). `save_episode` stages every file
it changes - the data parquet with the episode appended, each camera's chunk mp4 with the new
packets remuxed on, the episodes table, tasks, stats and info.json - and commits them together
(see `commit.py`), so a process killed at any instant leaves the previously saved episodes
intact and the dataset valid.

Parquet and mp4 files are immutable once written, so appending rewrites the current chunk file:
a save costs O(current file size), bounded by `data_files_size_in_mb` / `video_files_size_in_mb`
(LeRobot 0.6's 100 MB / 200 MB by default) after which a new file is started.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import stats as stats_lib
from .commit import DatasetLock, DatasetLockedError, Transaction, recover
from .layout import (
    DEFAULT_CHUNKS_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_FEATURES,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    EPISODES_PATH,
    INFO_PATH,
    RECORDING_DIR,
    STATS_PATH,
    TASKS_PATH,
    InfoView,
    camera_keys,
    chunk_file_path,
    dataset_features,
    episode_video_path,
    load_info,
    new_info,
    next_chunk_file,
    read_json,
    video_columns,
    write_json,
)
from .tables import (
    append_episode_rows,
    episode_table,
    frame_table,
    read_last_episode,
    read_parquet,
    read_tasks,
    tasks_table,
    write_parquet,
)
from .validate import check_append, check_frame
from .video import (
    DEFAULT_VIDEO_CODEC,
    EpisodeVideoEncoder,
    append_video,
    canonical_codec,
    probe_video_info,
)

log = logging.getLogger(__name__)

_MB = 1024 * 1024


class DatasetWriter(InfoView):
    """Creates a dataset at `root`, or appends to the one there, an episode at a time.

    `features` uses LeRobot's form ({key: {"dtype", "shape", "names"}}); cameras are dtype
    "image" with shape [H, W, 3] and are stored as video. The bookkeeping columns (timestamp,
    frame_index, episode_index, index, task_index) are added here. `video_codec` is a PyAV
    encoder name ("libsvtav1", LeRobot's default, or "libx264", ...); when appending it defaults
    to the codec already in the dataset. One writer per dataset at a time (a file lock).
    """

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: dict[str, dict[str, Any]],
        robot_type: str | None = None,
        video_codec: str | None = None,
        *,
        chunks_size: int = DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    ):
        if not isinstance(fps, int) or fps <= 0:
            raise ValueError(f"fps must be a positive int, got {fps!r}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        wanted = dataset_features(features)
        self._lock = DatasetLock(self.root)
        if not self._lock.acquire():
            raise DatasetLockedError(f"{self.root} is open in another DatasetWriter")
        try:
            done = recover(self.root)
            if done:
                log.warning("dataset %s: %s", self.root, done)
            if (self.root / INFO_PATH).exists():
                self._open_existing(fps, wanted, robot_type, video_codec)
            else:
                self._create(
                    fps,
                    wanted,
                    robot_type,
                    video_codec,
                    chunks_size,
                    data_files_size_in_mb,
                    video_files_size_in_mb,
                )
        except BaseException:
            self._lock.release()
            raise
        self._closed = False
        self._reset_episode()

    # ---- opening ---------------------------------------------------------------------------

    def _create(
        self,
        fps: int,
        features: dict[str, dict[str, Any]],
        robot_type: str | None,
        video_codec: str | None,
        chunks_size: int,
        data_mb: float,
        video_mb: float,
    ) -> None:
        self.video_codec = video_codec or DEFAULT_VIDEO_CODEC
        canonical_codec(self.video_codec)  # fail now, not at the first frame
        self.info = new_info(fps, features, robot_type, chunks_size, data_mb, video_mb)
        self._tasks: list[str] = []
        self._stats: dict[str, stats_lib.Stats] | None = None
        self._last: dict[str, Any] | None = None
        txn = Transaction(self.root)
        write_json(txn.path(INFO_PATH), self.info)
        txn.commit()

    def _open_existing(
        self,
        fps: int,
        features: dict[str, dict[str, Any]],
        robot_type: str | None,
        video_codec: str | None,
    ) -> None:
        self.info = load_info(self.root)
        self.video_codec = check_append(
            self.root, self.info, fps, features, robot_type, video_codec
        )
        total = self.info["total_episodes"]
        self._tasks = read_tasks(self.root / TASKS_PATH) if total else []
        self._stats = stats_lib.from_json(read_json(self.root / STATS_PATH)) if total else None
        self._last = read_last_episode(self.root, self.features, total) if total else None

    # ---- recording -------------------------------------------------------------------------

    @property
    def episode_frames(self) -> int:
        """Frames added to the episode in progress."""
        return len(self._frame_tasks)

    def _reset_episode(self) -> None:
        self._frame_tasks: list[str] = []
        self._values: dict[str, list[np.ndarray]] = {}
        self._encoders: dict[str, EpisodeVideoEncoder] = {}
        self._image_stats: dict[str, stats_lib.ImageStatsAccumulator] = {}

    def add_frame(self, frame: dict[str, Any], task: str) -> None:
        """Append one frame to the episode in progress; a bad frame raises and changes nothing."""
        self._check_open()
        checked = check_frame(self.features, frame, task)
        if not self._frame_tasks:
            self._start_episode()
        for key, value in checked.items():
            if key in self._encoders:
                self._encoders[key].add(value)
                self._image_stats[key].add(value)
            else:
                self._values[key].append(value)
        self._frame_tasks.append(task)

    def _start_episode(self) -> None:
        folder = self.root / RECORDING_DIR / f"episode-{self.num_episodes:06d}"
        for key in camera_keys(self.features):
            height, width, _ = self.features[key]["shape"]
            self._encoders[key] = EpisodeVideoEncoder(
                folder / f"{key}.mp4", self.info["fps"], height, width, self.video_codec
            )
            self._image_stats[key] = stats_lib.ImageStatsAccumulator()
        for key, ft in self.features.items():
            if key not in DEFAULT_FEATURES and ft["dtype"] != "video":
                self._values[key] = []

    def discard_episode(self) -> None:
        """Drop the episode in progress (its frames and temporary video files)."""
        for encoder in self._encoders.values():
            encoder.abort()
        shutil.rmtree(self.root / RECORDING_DIR, ignore_errors=True)
        self._reset_episode()

    # ---- saving ----------------------------------------------------------------------------

    def save_episode(self) -> int:
        """Commit the episode in progress atomically and return its episode_index."""
        self._check_open()
        length = self.episode_frames
        if length == 0:
            raise ValueError("no frames were added since the last save; nothing to save")
        episode = self.num_episodes
        fps = self.info["fps"]
        videos = {key: encoder.finish() for key, encoder in self._encoders.items()}

        tasks = list(self._tasks)
        for task in dict.fromkeys(self._frame_tasks):
            if task not in tasks:
                tasks.append(task)
        task_ids = {task: i for i, task in enumerate(tasks)}
        columns = {key: np.stack(values) for key, values in self._values.items()}
        columns["timestamp"] = (np.arange(length) / fps).astype(np.float32)
        columns["frame_index"] = np.arange(length, dtype=np.int64)
        columns["episode_index"] = np.full(length, episode, dtype=np.int64)
        columns["index"] = self.num_frames + np.arange(length, dtype=np.int64)
        columns["task_index"] = np.array([task_ids[t] for t in self._frame_tasks], dtype=np.int64)

        ep_stats = {key: stats_lib.numeric_stats(columns[key]) for key in columns}
        ep_stats.update({key: acc.result() for key, acc in self._image_stats.items()})
        ep_stats = {key: ep_stats[key] for key in self.features}  # info.json's feature order

        info = _copy_info(self.info)
        txn = Transaction(self.root)
        try:
            row: dict[str, Any] = {
                "episode_index": episode,
                "tasks": list(dict.fromkeys(self._frame_tasks)),
                "length": length,
            }
            row.update(self._stage_data(txn, frame_table(self.features, columns)))
            for key, path in videos.items():
                if "info" not in info["features"][key]:
                    info["features"][key]["info"] = probe_video_info(path)
                row.update(self._stage_video(txn, key, path, length / fps))
            row.update(self._stage_episode_row(txn, info, row, ep_stats))
            if len(tasks) != len(self._tasks):
                write_parquet(tasks_table(tasks), txn.path(TASKS_PATH))
            combined = (
                stats_lib.combine_datasets([self._stats, ep_stats]) if self._stats else ep_stats
            )
            write_json(txn.path(STATS_PATH), stats_lib.to_json(combined))
            info["total_episodes"] = episode + 1
            info["total_frames"] += length
            info["total_tasks"] = len(tasks)
            info["splits"] = {"train": f"0:{episode + 1}"}
            write_json(txn.path(INFO_PATH), info)
        except BaseException:
            txn.abort()
            raise
        # If this fails, .pending stays for `recover` at the next open: it finishes the commit if
        # the marker was written and drops it otherwise.
        txn.commit()

        self.info, self._tasks, self._stats, self._last = info, tasks, combined, row
        shutil.rmtree(self.root / RECORDING_DIR, ignore_errors=True)
        self._reset_episode()
        return episode

    def _stage_data(self, txn: Transaction, table: pa.Table) -> dict[str, Any]:
        start = self.num_frames
        chunk, file, base = 0, 0, None
        if self._last is not None:
            chunk, file = self._last["data/chunk_index"], self._last["data/file_index"]
            current = self.root / chunk_file_path(self.info["data_path"], chunk, file)
            size = current.stat().st_size
            per_row = size / max(pq.read_metadata(current).num_rows, 1)
            if size + per_row * table.num_rows >= self.info["data_files_size_in_mb"] * _MB:
                chunk, file = next_chunk_file(chunk, file, self.info["chunks_size"])
            else:
                base = read_parquet(current).select(table.schema.names).cast(table.schema)
        merged = pa.concat_tables([base, table]) if base is not None else table
        write_parquet(merged, txn.path(chunk_file_path(self.info["data_path"], chunk, file)))
        return {
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": start,
            "dataset_to_index": start + table.num_rows,
        }

    def _stage_video(
        self, txn: Transaction, key: str, episode_mp4: Path, duration_s: float
    ) -> dict[str, Any]:
        template = self.info["video_path"]
        chunk, file, offset, base = 0, 0, 0.0, None
        if self._last is not None:
            chunk = self._last[f"videos/{key}/chunk_index"]
            file = self._last[f"videos/{key}/file_index"]
            current = self.root / episode_video_path(self.info, self._last, key)
            limit = self.info["video_files_size_in_mb"] * _MB
            if current.stat().st_size + episode_mp4.stat().st_size >= limit:
                chunk, file = next_chunk_file(chunk, file, self.info["chunks_size"])
            else:
                base, offset = current, self._last[f"videos/{key}/to_timestamp"]
        staged = txn.path(chunk_file_path(template, chunk, file, video_key=key))
        if base is None:
            shutil.copyfile(episode_mp4, staged)  # the recording stays until the commit is done
        else:
            append_video(base, episode_mp4, staged, offset)
        return video_columns(key, chunk, file, offset, offset + duration_s)

    def _stage_episode_row(
        self,
        txn: Transaction,
        info: dict[str, Any],
        row: dict[str, Any],
        ep_stats: dict[str, stats_lib.Stats],
    ) -> dict[str, Any]:
        chunk, file, base = 0, 0, None
        if self._last is not None:
            chunk = self._last["meta/episodes/chunk_index"]
            file = self._last["meta/episodes/file_index"]
            current = self.root / chunk_file_path(EPISODES_PATH, chunk, file)
            if current.stat().st_size >= self.info["data_files_size_in_mb"] * _MB:
                chunk, file = next_chunk_file(chunk, file, self.info["chunks_size"])
            else:
                base = read_parquet(current)
        where = {"meta/episodes/chunk_index": chunk, "meta/episodes/file_index": file}
        table = episode_table(info["features"], {**row, **where}, ep_stats)
        merged = table if base is None else append_episode_rows(base, table)
        write_parquet(merged, txn.path(chunk_file_path(EPISODES_PATH, chunk, file)))
        return where

    # ---- closing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"DatasetWriter for {self.root} is closed")

    def close(self) -> None:
        """Release the dataset; an unsaved episode is discarded (with a warning)."""
        if self._closed:
            return
        if self.episode_frames:
            warnings.warn(
                f"DatasetWriter closed with an unsaved episode of {self.episode_frames} frames "
                f"in {self.root}; it was discarded (call save_episode() to keep it)",
                stacklevel=2,
            )
        self.discard_episode()
        self._closed = True
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_info(info: dict[str, Any]) -> dict[str, Any]:
    features = {key: {**ft} for key, ft in info["features"].items()}
    return {**info, "features": features}
