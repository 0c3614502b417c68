"""Reading rosbag2 MCAP recordings: the files of a recording, their decoded messages, and the
first pass of `mcap_import`, which gathers each mapped feature's samples in time.

Decoding uses the `mcap` and `mcap-ros2-support` libraries with the message definitions stored
in the file itself, so no ROS installation is needed. A JointTrajectory is expanded into its
points (stamp + time_from_start), and a newer trajectory replaces the part of an older one that
lies after its stamp, as ros2_control's JointTrajectoryController does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import NonSeekingReader
from mcap_ros2.decoder import DecoderFactory

from .mcap_config import ImportConfig, TopicFeature
from .raw_image import IMAGE_LAYOUTS

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
class Decoded:
    """One message of a recording, decoded, with its topic, type name and log time."""

    topic: str
    schema: str
    log_time_s: float
    message: Any


def read_messages(files: list[Path], topics: set[str], notes: list[str]) -> Iterator[Decoded]:
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
                    yield Decoded(channel.topic, name, message.log_time * 1e-9, decoded)
        except EndOfFile:
            note = f"{path} ends mid-record (recording cut short); read up to the cut"
            if note not in notes:
                notes.append(note)
        except (McapError, ValueError, KeyError) as err:
            raise McapImportError(f"{path}: cannot read it as ROS 2 MCAP: {err}") from err


# ---- pass 1: times and numeric values ---------------------------------------------------------


@dataclass
class Series:
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


def _stamp(decoded: Decoded, clock: str) -> float:
    header = getattr(decoded.message, "header", None)
    if clock == "header" and header is not None:
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        if stamp > 0:  # a zero stamp means "unset" (or "now" for a trajectory)
            return stamp
    return decoded.log_time_s


def _select(series: Series, names: Sequence[str], values: Sequence[float], where: str) -> Any:
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


def _add_sample(series: Series, decoded: Decoded, clock: str, where: str) -> None:
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
class Scan:
    """What the first pass found: every feature's samples, and the episode topic's times."""

    series: dict[str, Series]
    gap_times: np.ndarray


def scan_recording(files: list[Path], config: ImportConfig, label: str, notes: list[str]) -> Scan:
    """Pass 1 over one recording (`label` in errors): every mapped feature's samples, and the
    times of the episode topic; a topic without messages is an error."""
    series = {fm.key: Series(fm) for fm in config.features}
    by_topic: dict[str, list[Series]] = {}
    for s in series.values():
        by_topic.setdefault(s.feature.topic, []).append(s)
    topics = set(by_topic) | ({config.gap_topic} if config.gap_topic else set())
    gap_times: list[float] = []
    for decoded in read_messages(files, topics, notes):
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
    return Scan(series, np.sort(np.asarray(gap_times)))
