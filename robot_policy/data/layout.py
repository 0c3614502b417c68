"""Where things live in a LeRobot v3.0 dataset folder, and what `meta/info.json` holds.

Paths, size limits and the default (bookkeeping) features follow LeRobot's v3.0 writer
(lerobot/datasets/utils.py) so that a folder written here loads with LeRobot's loaders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CODEBASE_VERSION = "v3.0"

# LeRobot's defaults: at most 1000 files per chunk folder; files roll over past these sizes.
DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

# Folders the writer owns besides the LeRobot layout: staged commits and the episode being
# recorded. Both start with a dot so LeRobot and the Hub ignore them.
PENDING_DIR = ".pending"
RECORDING_DIR = ".recording"
LOCK_FILE = ".lock"

# Columns every frame carries; the writer fills them, callers never pass them.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

NUMERIC_DTYPES = ("float32", "float64", "int32", "int64")


class DatasetFormatError(ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


class DatasetMismatchError(ValueError):
    """An existing dataset was opened for appending with different fps, features or codec."""


class InfoView:
    """Read-only views of `meta/info.json` shared by the reader and the writer (both hold the
    current info dict as `self.info`)."""

    info: dict[str, Any]

    @property
    def fps(self) -> int:
        return self.info["fps"]

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def num_episodes(self) -> int:
        return self.info["total_episodes"]

    @property
    def num_frames(self) -> int:
        return self.info["total_frames"]


def chunk_file_path(template: str, chunk_index: int, file_index: int, **extra: Any) -> str:
    return template.format(chunk_index=chunk_index, file_index=file_index, **extra)


def episode_video_path(info: dict[str, Any], episode: dict[str, Any], key: str) -> str:
    """The mp4 holding camera `key` of `episode` (its episodes-table row), relative to the root."""
    chunk, file = episode[f"videos/{key}/chunk_index"], episode[f"videos/{key}/file_index"]
    return chunk_file_path(info["video_path"], chunk, file, video_key=key)


def video_columns(key: str, chunk: int, file: int, start_s: float, end_s: float) -> dict[str, Any]:
    """An episode's cells for camera `key` in the episodes table: its file and time span there."""
    return {
        f"videos/{key}/chunk_index": chunk,
        f"videos/{key}/file_index": file,
        f"videos/{key}/from_timestamp": start_s,
        f"videos/{key}/to_timestamp": end_s,
    }


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk, file) pair after this one: a chunk folder holds at most `chunks_size` files."""
    if file_index + 1 >= chunks_size:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


def is_camera(feature: dict[str, Any]) -> bool:
    return feature["dtype"] in ("image", "video")


def camera_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    return [key for key, ft in features.items() if is_camera(ft)]


def dataset_features(user_features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate the caller's features and return them as info.json stores them.

    Cameras (dtype "image", uint8 H x W x 3) become dtype "video": frames go to mp4, not parquet.
    Only 1-D numeric features and RGB cameras are supported, which is what the data and
    policy code here need; anything else fails now rather than at the first frame.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, ft in user_features.items():
        if "/" in key:
            raise ValueError(f"feature name {key!r} must not contain '/' (LeRobot rule)")
        if key in DEFAULT_FEATURES:
            raise ValueError(f"feature {key!r} is filled in by the writer; do not declare it")
        if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
            raise ValueError(f"feature {key!r} needs 'dtype' and 'shape', got {ft!r}")
        shape = [int(s) for s in ft["shape"]]
        dtype = ft["dtype"]
        if dtype in ("image", "video"):
            if len(shape) != 3 or shape[2] != 3 or shape[0] % 2 or shape[1] % 2:
                raise ValueError(
                    f"camera feature {key!r} must have shape [height, width, 3] with even height "
                    f"and width (yuv420p video), got {shape}"
                )
            entry = {
                "dtype": "video",
                "shape": shape,
                "names": list(ft.get("names") or ["height", "width", "channels"]),
            }
            if "info" in ft:
                entry["info"] = dict(ft["info"])
        elif dtype in NUMERIC_DTYPES:
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f"numeric feature {key!r} must be 1-D, got shape {shape}")
            names = ft.get("names")
            if names is not None and (not isinstance(names, list) or len(names) != shape[0]):
                raise ValueError(f"feature {key!r}: 'names' must be a list of {shape[0]} names")
            entry = {"dtype": dtype, "shape": shape, "names": names}
        else:
            supported = ", ".join(("image",) + NUMERIC_DTYPES)
            raise ValueError(f"feature {key!r} has dtype {dtype!r}; supported: {supported}")
        out[key] = entry
    if not out:
        raise ValueError("features must declare at least one feature")
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = {**ft, "shape": list(ft["shape"])}
    return out


def new_info(
    fps: int,
    features: dict[str, dict[str, Any]],
    robot_type: str | None,
    chunks_size: int,
    data_files_size_in_mb: float,
    video_files_size_in_mb: float,
) -> dict[str, Any]:
    """info.json of an empty dataset, with LeRobot's field order."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": fps,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if camera_keys(features) else None,
        "features": features,
    }


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DatasetFormatError(f"missing dataset file: {path}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetFormatError(f"corrupt dataset file {path}: {err}") from err


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=4, ensure_ascii=False)


_REQUIRED_INFO = {
    "codebase_version": str,
    "fps": int,
    "features": dict,
    "total_episodes": int,
    "total_frames": int,
    "total_tasks": int,
    "chunks_size": int,
    "data_path": str,
}


def load_info(root: Path) -> dict[str, Any]:
    """Read and sanity-check meta/info.json; only v3.0 datasets are understood."""
    path = root / INFO_PATH
    info = read_json(path)
    if not isinstance(info, dict):
        raise DatasetFormatError(f"corrupt dataset file {path}: expected a JSON object")
    for field, kind in _REQUIRED_INFO.items():
        if not isinstance(info.get(field), kind):
            raise DatasetFormatError(
                f"corrupt dataset file {path}: field {field!r} missing or not {kind.__name__}"
            )
    if info["codebase_version"] != CODEBASE_VERSION:
        raise DatasetFormatError(
            f"{path}: codebase_version {info['codebase_version']!r} is not {CODEBASE_VERSION!r} "
            "(convert older datasets with LeRobot's v2.1 -> v3.0 script)"
        )
    for key, ft in info["features"].items():
        if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
            raise DatasetFormatError(f"corrupt dataset file {path}: feature {key!r} malformed")
    if camera_keys(info["features"]) and not isinstance(info.get("video_path"), str):
        raise DatasetFormatError(f"corrupt dataset file {path}: video features but no video_path")
    return info


def comparable_features(features: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    """What must agree between sessions appending to one dataset.

    Video `info` is left out: it describes the encoding, which the writer checks on its own.
    """
    return {
        key: (ft["dtype"], tuple(ft["shape"]), None if is_camera(ft) else ft.get("names"))
        for key, ft in features.items()
    }
