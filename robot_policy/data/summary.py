"""A summary of a dataset folder for `robot-policy dataset info`, read from metadata only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .commit import recover_if_idle
from .layout import (
    TASKS_PATH,
    DatasetFormatError,
    camera_keys,
    chunk_file_path,
    episode_video_path,
    load_info,
)
from .tables import episode_files, read_episodes, read_tasks


def describe(root: str | Path) -> dict[str, Any]:
    """Episodes, frames, features, tasks, episode lengths, size on disk and camera codecs.

    Reads meta/ only (plus a check that every referenced data/video file exists), so it is cheap
    on large datasets; a missing or corrupt file raises `DatasetFormatError` naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"no dataset folder at {root}")
    recover_if_idle(root)
    info = load_info(root)
    features = info["features"]
    total = info["total_episodes"]
    tasks = read_tasks(root / TASKS_PATH) if total else []
    episodes = read_episodes(episode_files(root), features)[:total] if total else []
    if len(episodes) != total:
        raise DatasetFormatError(
            f"{root / 'meta/episodes'}: {len(episodes)} episodes listed, info.json says {total}"
        )
    cameras = camera_keys(features)
    referenced = {
        chunk_file_path(info["data_path"], e["data/chunk_index"], e["data/file_index"])
        for e in episodes
    }
    for key in cameras:
        referenced |= {episode_video_path(info, e, key) for e in episodes}
    for rel in sorted(referenced):
        if not (root / rel).is_file():
            raise DatasetFormatError(f"missing dataset file: {root / rel}")

    lengths = np.array([e["length"] for e in episodes], dtype=np.int64)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not _hidden(p, root))
    return {
        "root": str(root),
        "codebase_version": info["codebase_version"],
        "robot_type": info.get("robot_type"),
        "fps": info["fps"],
        "episodes": total,
        "frames": info["total_frames"],
        "duration_s": info["total_frames"] / info["fps"],
        "tasks": tasks,
        "features": {
            key: {"dtype": ft["dtype"], "shape": list(ft["shape"])} for key, ft in features.items()
        },
        "episode_length": {
            "min": int(lengths.min()) if total else 0,
            "max": int(lengths.max()) if total else 0,
            "mean": float(lengths.mean()) if total else 0.0,
        },
        "size_bytes": size,
        "cameras": {
            key: {
                "codec": features[key].get("info", {}).get("video.codec"),
                "pix_fmt": features[key].get("info", {}).get("video.pix_fmt"),
                "height": features[key]["shape"][0],
                "width": features[key]["shape"][1],
                "size_bytes": sum(p.stat().st_size for p in (root / "videos" / key).rglob("*.mp4")),
            }
            for key in cameras
        },
    }


def _hidden(path: Path, root: Path) -> bool:
    """Writer scratch (.pending, .recording, .lock) is not part of the dataset's size."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)
