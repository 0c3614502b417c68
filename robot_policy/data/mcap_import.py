"""Importing rosbag2 MCAP recordings into a dataset, by a topic-to-feature mapping.

Topics publish at their own rates; a dataset has one frame every 1/fps seconds. Each feature is
resampled onto that grid by zero-order hold (a frame holds the newest message at or before its
time), which is what a controller sampling its inputs at that rate would have seen. A frame
exists only where every mapped topic has published: within an episode's window, frames run
from the time the last topic starts to the time the first one stops.

Episodes are one per recording (`split: bag`) or are cut wherever a chosen topic pauses longer
than `gap_s` (`split: gap`; e.g. the command topic between demonstrations).

Two passes keep memory bounded by the numeric data: the first (`mcap_read.scan_recording`)
reads every message's time (and numeric values), the second decodes only the camera images a
frame uses, in order, and streams them to the video encoder. The output appears at `out` only
when the whole import succeeded (see `assemble.new_dataset_dir`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_policy.data.raw_image import decode_image

from .assemble import new_dataset_dir
from .mcap_config import ImportConfig
from .mcap_read import McapImportError, Scan, read_messages, recording_files, scan_recording
from .video import DEFAULT_VIDEO_CODEC
from .writer import DatasetWriter

__all__ = ["McapImportError", "import_mcap"]

log = logging.getLogger(__name__)


# ---- planning: episodes and the message each frame holds --------------------------------------


@dataclass
class _Episode:
    start_s: float
    length: int
    picks: dict[str, np.ndarray]  # feature -> index into its time-sorted samples, per frame


def _plan(scan: Scan, config: ImportConfig) -> tuple[list[_Episode], list[str]]:
    sorted_series = {key: s.sorted() for key, s in scan.series.items()}
    if config.split == "bag":
        windows = [(-np.inf, np.inf)]
    else:
        gaps = np.flatnonzero(np.diff(scan.gap_times) > config.gap_s)
        starts = np.concatenate([[scan.gap_times[0]], scan.gap_times[gaps + 1]])
        ends = np.concatenate([scan.gap_times[gaps], [scan.gap_times[-1]]])
        windows = list(zip(starts, ends, strict=True))
    episodes, skipped = [], []
    for low, high in windows:
        # Every feature's first and last message inside the window: holding a value from
        # before it would carry the previous episode's data into this one.
        firsts, lasts = [], []
        for times, _ in sorted_series.values():
            i = np.searchsorted(times, low, side="left")
            j = np.searchsorted(times, high, side="right") - 1
            firsts.append(times[i] if i < len(times) else np.inf)
            lasts.append(times[j] if j >= 0 else -np.inf)
        start, end = max(firsts), min(lasts)
        if not end >= start:
            skipped.append(f"{low:.3f}-{high:.3f} s: not every mapped topic publishes in it")
            continue
        length = int(np.floor((end - start) * config.fps + 1e-6)) + 1
        grid = start + np.arange(length) / config.fps
        picks = {
            key: np.searchsorted(times, grid, side="right") - 1
            for key, (times, _) in sorted_series.items()
        }
        episodes.append(_Episode(float(start), length, picks))
    return episodes, skipped


# ---- pass 2: frames ---------------------------------------------------------------------------


def _image(msg: Any) -> np.ndarray:
    try:
        return decode_image(msg)
    except ValueError as exc:
        raise McapImportError(str(exc)) from exc


def _frames(
    files: list[Path], scan: Scan, episodes: list[_Episode], notes: list[str]
) -> Iterator[dict[str, Any]]:
    """Every frame of every planned episode, in order; images are decoded once, when used."""
    values = {key: s.sorted()[1] for key, s in scan.series.items()}
    cameras = {key: s for key, s in scan.series.items() if s.feature.is_camera}
    numeric = [key for key in scan.series if key not in cameras]
    needs = [
        {key: values[key][ep.picks[key][k]] for key in cameras}
        for ep in episodes
        for k in range(ep.length)
    ]
    uses = {key: Counter(int(need[key]) for need in needs) for key in cameras}
    held: dict[str, dict[int, np.ndarray]] = {key: {} for key in cameras}

    def frame(position: int, episode: _Episode, k: int) -> dict[str, Any]:
        out = {key: values[key][episode.picks[key][k]].astype(np.float32) for key in numeric}
        for key in cameras:
            ordinal = int(needs[position][key])
            out[key] = held[key][ordinal]
            uses[key][ordinal] -= 1
            if not uses[key][ordinal]:
                del held[key][ordinal]
        return out

    order = [(ep, k) for ep in episodes for k in range(ep.length)]
    position = 0

    def ready() -> bool:
        return position < len(order) and all(
            int(needs[position][key]) in held[key] for key in cameras
        )

    if cameras:
        topic_keys: dict[str, list[str]] = {}
        for key, s in cameras.items():
            topic_keys.setdefault(s.feature.topic, []).append(key)
        seen: Counter[str] = Counter()
        for decoded in read_messages(files, set(topic_keys), notes):
            ordinal = seen[decoded.topic]
            seen[decoded.topic] += 1
            for key in topic_keys[decoded.topic]:
                if uses[key][ordinal]:
                    held[key][ordinal] = _image(decoded.message)
            while ready():
                yield frame(position, *order[position])
                position += 1
    else:
        while position < len(order):
            yield frame(position, *order[position])
            position += 1
    if position < len(order):
        raise McapImportError(f"{files[0]}: images changed between the two reading passes")


# ---- the import -------------------------------------------------------------------------------


def _features(scan: Scan) -> dict[str, dict[str, Any]]:
    features: dict[str, dict[str, Any]] = {}
    for key, s in scan.series.items():
        fm = s.feature
        if fm.is_camera:
            height, width = s.image_shape  # type: ignore[misc]  # set by the first image
            features[key] = {"dtype": "image", "shape": [height, width, 3]}
            continue
        size = s.values[0].size
        names = fm.names or fm.joints or s.names
        if names is not None and len(names) != size:
            raise McapImportError(
                f"feature {key!r}: {len(names)} names for {size} values from {fm.topic}"
            )
        features[key] = {
            "dtype": "float32",
            "shape": [size],
            "names": list(names) if names else None,
        }
    return features


def import_mcap(
    recordings: Sequence[str | Path],
    out: str | Path,
    config: ImportConfig,
    *,
    video_codec: str = DEFAULT_VIDEO_CODEC,
    progress: bool = False,
) -> dict[str, Any]:
    """Import recordings (MCAP files or rosbag2 folders) into a new dataset at `out`."""
    if not recordings:
        raise McapImportError("no recordings given")
    began = time.perf_counter()
    sources = [(Path(r), recording_files(r)) for r in recordings]
    notes: list[str] = []
    report: list[dict[str, Any]] = []
    with new_dataset_dir(out) as staging:
        writer: DatasetWriter | None = None
        try:
            for path, files in sources:
                scan = scan_recording(files, config, str(path), notes)
                episodes, skipped = _plan(scan, config)
                notes += [f"{path}: skipped {s}" for s in skipped]
                features = _features(scan)
                if writer is None:
                    writer = DatasetWriter(
                        staging, config.fps, features, config.robot_type, video_codec
                    )
                elif (mismatch := _mismatch(writer, features)) is not None:
                    raise McapImportError(f"{path}: {mismatch} than the recordings before it")
                _write(writer, files, scan, episodes, config.task, path, progress, notes)
                report += [
                    {"recording": str(path), "start_s": ep.start_s, "frames": ep.length}
                    for ep in episodes
                ]
            if not report:
                raise McapImportError("no episode found: " + "; ".join(notes))
        finally:
            if writer is not None:
                writer.close()
    return {
        "dataset": str(out),
        "episodes": len(report),
        "frames": sum(r["frames"] for r in report),
        "seconds": time.perf_counter() - began,
        "episode_list": report,
        "notes": notes,
    }


def _mismatch(writer: DatasetWriter, features: dict[str, dict[str, Any]]) -> str | None:
    have = {k: list(ft["shape"]) for k, ft in writer.features.items() if k in features}
    want = {k: list(ft["shape"]) for k, ft in features.items()}
    return None if have == want else f"feature shapes {want} differ from {have}"


def _write(
    writer: DatasetWriter,
    files: list[Path],
    scan: Scan,
    episodes: list[_Episode],
    task: str,
    path: Path,
    progress: bool,
    notes: list[str],
) -> None:
    total = sum(ep.length for ep in episodes)
    ends = set(np.cumsum([ep.length for ep in episodes]).tolist())
    bar = tqdm(total=total, desc=f"import {path.name}", unit="frame", disable=not progress)
    for position, frame in enumerate(_frames(files, scan, episodes, notes), start=1):
        writer.add_frame(frame, task)
        bar.update()
        if position in ends:
            writer.save_episode()
    bar.close()
