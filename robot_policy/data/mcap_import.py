"""Importing rosbag2 MCAP recordings into a dataset, by a topic-to-feature mapping.

Topics publish at their own rates; a dataset has one frame every 1/fps seconds. Each feature is
resampled onto that grid by zero-order hold (a frame holds the newest message at or before its
time), which is what a controller sampling its inputs at that rate would have seen. A frame
exists only where every mapped topic has published: within an episode's window, frames run
from the time the last topic starts to the time the first one stops. A JointTrajectory is
expanded into its points (stamp + time_from_start) and a newer trajectory replaces the part of
an older one that lies after its stamp, as ros2_control's JointTrajectoryController does.

Episodes are one per recording (`split: bag`) or are cut wherever a chosen topic pauses longer
than `gap_s` (`split: gap`; e.g. the command topic between demonstrations).

Two passes keep memory bounded by the numeric data: the first reads every message's time
(and numeric values), the second decodes only the camera images a frame uses, in order, and
streams them to the video encoder. The output appears at `out` only when the whole import
succeeded (see `assemble.new_dataset_dir`).

Decoding uses the `mcap` and `mcap-ros2-support` libraries with the message definitions stored
in the file itself, so no ROS installation is needed.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import NonSeekingReader
from mcap_ros2.decoder import DecoderFactory
from tqdm import tqdm

from robot_policy.data.raw_image import IMAGE_LAYOUTS, decode_image

from .assemble import new_dataset_dir
from .mcap_config import ImportConfig, TopicFeature
from .video import DEFAULT_VIDEO_CODEC
from .writer import DatasetWriter

log = logging.getLogger(__name__)

JOINT_STATE = "sensor_msgs/msg/JointState"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
IMAGE = "sensor_msgs/msg/Image"
# Message type -> the field read when the mapping names none.
NUMERIC_TYPES = {
    JOINT_STATE: "position",
    JOINT_TRAJECTORY: "positions",
    "std_msgs/msg/Float64MultiArray": "data",
    "std_msgs/msg/Float32MultiArray": "data",
}
NAMED_TYPES = (JOINT_STATE, JOINT_TRAJECTORY)


class McapImportError(ValueError):
    """A recording cannot be imported as asked; the message names the file and topic."""


# ---- recordings -------------------------------------------------------------------------------


def recording_files(path: str | Path) -> list[Path]:
    """The .mcap files of a recording: one file, or a rosbag2 folder (in metadata.yaml order)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise McapImportError(f"no recording at {path}")
    metadata = path / "metadata.yaml"
    if metadata.is_file():
        try:
            info = yaml.safe_load(metadata.read_text())["rosbag2_bagfile_information"]
            files = [path / rel for rel in info["relative_file_paths"]]
        except (yaml.YAMLError, KeyError, TypeError) as err:
            raise McapImportError(f"{metadata}: not a rosbag2 metadata file ({err})") from err
    else:
        files = sorted(path.glob("*.mcap"), key=_natural_key)
    if not files:
        raise McapImportError(f"{path} holds no .mcap file")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise McapImportError(f"{path}: files listed in metadata.yaml are missing: {missing}")
    return files


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


@dataclass
class _Decoded:
    topic: str
    schema: str
    log_time_s: float
    message: Any


def _messages(files: list[Path], topics: set[str], notes: list[str]) -> Iterator[_Decoded]:
    """Decoded messages of `topics` in file order. A file cut short (a recorder that died) is
    read up to the cut, with a note; any other damage is an error naming the file."""
    for path in files:
        try:
            with open(path, "rb") as stream:
                reader = NonSeekingReader(stream, decoder_factories=[DecoderFactory()])
                # File order: sorting by log time here would hold the whole file in memory.
                for schema, channel, message, decoded in reader.iter_decoded_messages(
                    topics=sorted(topics), log_time_order=False
                ):
                    name = schema.name if schema else ""
                    yield _Decoded(channel.topic, name, message.log_time * 1e-9, decoded)
        except EndOfFile:
            note = f"{path} ends mid-record (recording cut short); read up to the cut"
            if note not in notes:
                notes.append(note)
        except (McapError, ValueError, KeyError) as err:
            raise McapImportError(f"{path}: cannot read it as ROS 2 MCAP: {err}") from err


# ---- pass 1: times and numeric values ---------------------------------------------------------


@dataclass
class _Series:
    """One feature's samples in arrival order: times and values (image: message ordinals)."""

    feature: TopicFeature
    schema: str | None = None
    times: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    names: tuple[str, ...] | None = None
    image_shape: tuple[int, int] | None = None

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        times = np.asarray(self.times, dtype=np.float64)
        order = np.argsort(times, kind="stable")
        return times[order], np.asarray(self.values)[order]


def _stamp(decoded: _Decoded, clock: str) -> float:
    header = getattr(decoded.message, "header", None)
    if clock == "header" and header is not None:
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        if stamp > 0:  # a zero stamp means "unset" (or "now" for a trajectory)
            return stamp
    return decoded.log_time_s


def _select(series: _Series, names: Sequence[str], values: Sequence[float], where: str) -> Any:
    fm = series.feature
    if len(values) != len(names):
        raise McapImportError(f"{where}: {len(values)} values for {len(names)} joint names")
    if fm.joints is None:
        if series.names is None:
            series.names = tuple(names)
        elif tuple(names) != series.names:
            raise McapImportError(
                f"{where}: joint names changed from {list(series.names)} to {list(names)}; "
                f"list the wanted joints under 'joints' for feature {fm.key!r}"
            )
        return np.asarray(values, dtype=np.float64)
    index = {name: i for i, name in enumerate(names)}
    missing = [j for j in fm.joints if j not in index]
    if missing:
        raise McapImportError(f"{where}: joints {missing} are not in the message ({list(names)})")
    return np.asarray([values[index[j]] for j in fm.joints], dtype=np.float64)


def _add_sample(series: _Series, decoded: _Decoded, clock: str, where: str) -> None:
    fm, msg, schema = series.feature, decoded.message, decoded.schema
    if series.schema is None:
        series.schema = schema
        supported = [IMAGE] if fm.is_camera else list(NUMERIC_TYPES)
        if schema not in supported:
            raise McapImportError(
                f"{where}: message type {schema!r} cannot fill feature {fm.key!r} "
                f"(supported: {supported})"
            )
    t = _stamp(decoded, clock)
    if schema == IMAGE:
        shape = (int(msg.height), int(msg.width))
        if msg.encoding not in IMAGE_LAYOUTS:
            raise McapImportError(
                f"{where}: image encoding {msg.encoding!r} is not one of {list(IMAGE_LAYOUTS)}"
            )
        if series.image_shape is None:
            series.image_shape = shape
        elif shape != series.image_shape:
            raise McapImportError(
                f"{where}: image size changed from {series.image_shape} to {shape}"
            )
        series.times.append(t)
        series.values.append(len(series.values))
        return
    name = fm.field or NUMERIC_TYPES[schema]
    if schema == JOINT_TRAJECTORY:
        # A new trajectory replaces whatever of the previous one had not happened yet.
        while series.times and series.times[-1] > t:
            series.times.pop()
            series.values.pop()
        last = -np.inf
        for point in msg.points:
            offset = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            if offset <= last:
                raise McapImportError(f"{where}: time_from_start does not increase")
            last = offset
            values = _field(point, name, where)
            series.times.append(t + offset)
            series.values.append(_select(series, msg.joint_names, values, where))
        return
    values = _field(msg, name, where)
    if schema == JOINT_STATE:
        value = _select(series, msg.name, values, where)
    else:
        if fm.joints is not None:
            raise McapImportError(
                f"{where}: {schema} carries no joint names; use 'names' to label its values"
            )
        value = np.asarray(values, dtype=np.float64)
    if series.values and value.shape != series.values[0].shape:
        raise McapImportError(
            f"{where}: {value.size} values, earlier messages had {series.values[0].size}"
        )
    series.times.append(t)
    series.values.append(value)


def _field(msg: Any, name: str, where: str) -> Sequence[float]:
    values = getattr(msg, name, None)
    if values is None:
        raise McapImportError(f"{where}: the message has no field {name!r}")
    return values


@dataclass
class _Scan:
    series: dict[str, _Series]
    gap_times: np.ndarray


def _scan(files: list[Path], config: ImportConfig, label: str, notes: list[str]) -> _Scan:
    series = {fm.key: _Series(fm) for fm in config.features}
    by_topic: dict[str, list[_Series]] = {}
    for s in series.values():
        by_topic.setdefault(s.feature.topic, []).append(s)
    topics = set(by_topic) | ({config.gap_topic} if config.gap_topic else set())
    gap_times: list[float] = []
    for decoded in _messages(files, topics, notes):
        where = f"{label} topic {decoded.topic}"
        for s in by_topic.get(decoded.topic, []):
            _add_sample(s, decoded, config.clock, where)
        if decoded.topic == config.gap_topic:
            gap_times.append(_stamp(decoded, config.clock))
    silent = [f"{s.feature.topic} ({key})" for key, s in series.items() if not s.times]
    if silent:
        raise McapImportError(f"{label}: no messages on {', '.join(silent)}")
    if config.split == "gap" and not gap_times:
        raise McapImportError(f"{label}: no messages on the episode topic {config.gap_topic}")
    return _Scan(series, np.sort(np.asarray(gap_times)))


# ---- planning: episodes and the message each frame holds --------------------------------------


@dataclass
class _Episode:
    start_s: float
    length: int
    picks: dict[str, np.ndarray]  # feature -> index into its time-sorted samples, per frame


def _plan(scan: _Scan, config: ImportConfig) -> tuple[list[_Episode], list[str]]:
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
    files: list[Path], scan: _Scan, episodes: list[_Episode], notes: list[str]
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
        for decoded in _messages(files, set(topic_keys), notes):
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


def _features(scan: _Scan) -> dict[str, dict[str, Any]]:
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
                scan = _scan(files, config, str(path), notes)
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
    scan: _Scan,
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
