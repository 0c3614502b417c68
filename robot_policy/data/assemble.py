"""Building a new dataset out of whole episodes of existing ones: the engine of merge, split and
delete-episodes.

Episodes are copied, not re-recorded: numeric rows keep their values and get new episode, frame
and task indices; camera frames are remuxed packet by packet to their new place (bit-identical
pixels, no encoder time). Numeric stats are recomputed from the rows being written (cheap, and
the bookkeeping columns change); camera stats are carried over, since the pixels do not change.

Crash safety comes from never touching the result's final path until it is complete: the new
dataset is built in a hidden sibling folder, flushed to disk, and renamed into place in one
step. A crash leaves at most that hidden folder; the sources are only ever read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import stats as stats_lib
from .commit import fsync_tree
from .layout import (
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    camera_keys,
    chunk_file_path,
    episode_video_path,
    new_info,
    next_chunk_file,
    video_columns,
    write_json,
)
from .reader import LeRobotDataset
from .tables import episodes_table, frame_table, tasks_table, write_parquet
from .video import SegmentMuxer

_MB = 1024 * 1024


@contextmanager
def new_dataset_dir(out: str | Path) -> Iterator[Path]:
    """A fresh folder to build into that appears at `out` only once the block succeeds."""
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} already exists; edits write a new folder and never overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        fsync_tree(staging)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EpisodeAssembler:
    """Writes a new v3.0 dataset at `root` from episodes of datasets shaped like `like`.

    Call `add` per episode in the order wanted, then `finish`. Data and video files roll over to
    the next file once they reach the size limits of `like` (a file ends with the episode that
    takes it past the limit); the episode table is a single file.
    """

    def __init__(self, root: Path, like: LeRobotDataset):
        self.root = root
        src = like.info
        features = {key: {**ft} for key, ft in src["features"].items()}
        self.info = new_info(
            src["fps"],
            features,
            src.get("robot_type"),
            src["chunks_size"],
            src.get("data_files_size_in_mb", DEFAULT_DATA_FILE_SIZE_IN_MB),
            src.get("video_files_size_in_mb", DEFAULT_VIDEO_FILE_SIZE_IN_MB),
        )
        self.cameras = camera_keys(features)
        self.numeric = [key for key in features if key not in self.cameras]
        self.tasks: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.stats: list[dict[str, stats_lib.Stats]] = []
        self.frames = 0
        self._data_at = (0, 0)
        self._data_parts: list[pa.Table] = []
        self._video_at = {key: (0, 0) for key in self.cameras}
        self._video_offset = dict.fromkeys(self.cameras, 0.0)
        self._muxers: dict[str, SegmentMuxer] = {}

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    def add(
        self, source: LeRobotDataset, episode: int, camera_stats: dict[str, stats_lib.Stats]
    ) -> int:
        """Append episode `episode` of `source`; returns its index in the new dataset."""
        start, end = source.episode_bounds(episode)
        length = end - start
        new_episode = len(self.rows)
        columns = {key: source.column(key)[start:end] for key in self.numeric}
        task_ids = {
            old: self._task_index(source.tasks[old]) for old in np.unique(columns["task_index"])
        }
        columns["task_index"] = np.array([task_ids[t] for t in columns["task_index"]], np.int64)
        columns["episode_index"] = np.full(length, new_episode, dtype=np.int64)
        columns["index"] = self.frames + np.arange(length, dtype=np.int64)

        row: dict[str, Any] = {
            "episode_index": new_episode,
            "tasks": list(source.episodes[episode]["tasks"]),
            "length": length,
        }
        row.update(self._place_data(frame_table(self.features, columns)))
        for key in self.cameras:
            row.update(self._place_video(key, source, episode, length))
        ep_stats = {key: stats_lib.numeric_stats(columns[key]) for key in self.numeric}
        ep_stats.update({key: camera_stats[key] for key in self.cameras})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        self.rows.append(row)
        self.stats.append({key: ep_stats[key] for key in self.features})
        self.frames += length
        return new_episode

    def _task_index(self, task: str) -> int:
        if task not in self.tasks:
            self.tasks.append(task)
        return self.tasks.index(task)

    def _place_data(self, table: pa.Table) -> dict[str, Any]:
        chunk, file = self._data_at
        self._data_parts.append(table)
        where = {
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + table.num_rows,
        }
        if sum(t.nbytes for t in self._data_parts) >= self.info["data_files_size_in_mb"] * _MB:
            self._flush_data()
            self._data_at = next_chunk_file(chunk, file, self.info["chunks_size"])
        return where

    def _flush_data(self) -> None:
        if self._data_parts:
            path = self.root / chunk_file_path(self.info["data_path"], *self._data_at)
            write_parquet(pa.concat_tables(self._data_parts), path)
            self._data_parts = []

    def _place_video(
        self, key: str, source: LeRobotDataset, episode: int, length: int
    ) -> dict[str, Any]:
        chunk, file = self._video_at[key]
        muxer = self._muxers.get(key)
        if muxer is None:
            path = chunk_file_path(self.info["video_path"], chunk, file, video_key=key)
            muxer = self._muxers[key] = SegmentMuxer(self.root / path)
            self._video_offset[key] = 0.0
        meta = source.episodes[episode]
        src_path = source.root / episode_video_path(source.info, meta, key)
        fps = self.info["fps"]
        offset = self._video_offset[key]
        muxer.add(src_path, meta[f"videos/{key}/from_timestamp"], length, fps, offset)
        self._video_offset[key] = offset + length / fps
        if muxer.bytes >= self.info["video_files_size_in_mb"] * _MB:
            muxer.close()
            del self._muxers[key]
            self._video_at[key] = next_chunk_file(chunk, file, self.info["chunks_size"])
        return video_columns(key, chunk, file, offset, offset + length / fps)

    def finish(self) -> dict[str, Any]:
        """Write the remaining files and the metadata; returns the new info.json."""
        if not self.rows:
            raise ValueError("the new dataset would have no episodes")
        self._flush_data()
        for muxer in self._muxers.values():
            muxer.close()
        self._muxers = {}
        episodes_path = self.root / chunk_file_path(EPISODES_PATH, 0, 0)
        write_parquet(episodes_table(self.features, self.rows, self.stats), episodes_path)
        write_parquet(tasks_table(self.tasks), self.root / TASKS_PATH)
        combined = stats_lib.combine_datasets(self.stats)
        write_json(self.root / STATS_PATH, stats_lib.to_json(combined))
        total = len(self.rows)
        self.info.update(
            total_episodes=total,
            total_frames=self.frames,
            total_tasks=len(self.tasks),
            splits={"train": f"0:{total}"},
        )
        write_json(self.root / INFO_PATH, self.info)
        return self.info
