"""The topic-to-feature mapping for importing rosbag2 MCAP recordings (config/mcap_import.yaml).

Unknown keys are errors, not ignored: a typo in a mapping would otherwise silently drop a
feature from every imported episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_policy.features import IMAGE_PREFIX
from robot_policy.settings import check_keys, from_yaml, load, problem, setting

CLOCKS = ("log_time", "header")
SPLITS = ("bag", "gap")


@dataclass(frozen=True)
class TopicFeature:
    """One dataset feature filled from one topic.

    `field` picks the message field (default: position for JointState, positions for
    JointTrajectory, data for the MultiArrays); `joints` selects and orders values by joint
    name (messages carry names; never trust their order); `names` labels the values when the
    message has no names.
    """

    key: str
    topic: str
    field: str | None = None
    joints: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None

    @property
    def is_camera(self) -> bool:
        return self.key.startswith(IMAGE_PREFIX)


@dataclass(frozen=True)
class EpisodeSettings:
    """The `episodes:` section: where one episode ends and the next begins."""

    split: str = setting("bag", "bag: one episode per bag; gap: split at pauses", choices=SPLITS)
    topic: str | None = setting(None, "gap: the topic whose pauses split episodes")
    gap_s: float = setting(1.0, "gap: s of silence on `topic` that ends an episode", low=1e-9)

    def __post_init__(self) -> None:
        if self.split == "gap" and not (self.topic or "").startswith("/"):
            raise ValueError(f"episodes.split 'gap' needs episodes.topic, got {self.topic!r}")


@dataclass(frozen=True)
class ImportSettings:
    """config/mcap_import.yaml as written (`ImportConfig` is what the importer uses)."""

    fps: int | None = setting(None, "dataset frame rate (required)", low=1)
    task: str | None = setting(None, "the instruction stored with every frame (required)")
    robot_type: str | None = setting(None, "robot_type stored in the dataset's info")
    clock: str = setting("log_time", "which time orders messages", choices=CLOCKS)
    episodes: EpisodeSettings = field(default_factory=EpisodeSettings)
    features: dict[str, Any] = setting({}, "feature name -> {topic, field, joints, names}")


@dataclass(frozen=True)
class ImportConfig:
    fps: int
    task: str
    features: tuple[TopicFeature, ...]
    robot_type: str | None = None
    clock: str = "log_time"  # or "header"
    split: str = "bag"  # or "gap"
    gap_topic: str | None = None
    gap_s: float = 1.0

    @classmethod
    def from_yaml(cls, path: str | Path) -> ImportConfig:
        if not Path(path).is_file():
            raise ValueError(f"no import config at {path}")
        return cls.from_settings(from_yaml(ImportSettings, path), str(path))

    @classmethod
    def from_dict(cls, data: Any) -> ImportConfig:
        return cls.from_settings(load(ImportSettings, data, ""))

    @classmethod
    def from_settings(cls, s: ImportSettings, where: str = "") -> ImportConfig:
        try:
            if s.fps is None or s.task is None:
                raise problem("fps" if s.fps is None else "task", "is required")
            if not s.task:
                raise problem("task", "must be a non-empty string")
            if not s.features:
                raise problem("features", "must map at least one feature to a topic")
            features = tuple(_feature(key, spec) for key, spec in s.features.items())
        except ValueError as err:
            raise problem(where, str(err)) from err
        e = s.episodes
        return cls(s.fps, s.task, features, s.robot_type, s.clock, e.split, e.topic, e.gap_s)


def _feature(key: Any, spec: Any) -> TopicFeature:
    if not isinstance(key, str) or "/" in key:
        raise ValueError(f"feature name {key!r} must be a string without '/'")
    spec = check_keys(spec, {"topic", "field", "joints", "names"}, f"features.{key}")
    topic = spec.get("topic")
    if not isinstance(topic, str) or not topic.startswith("/"):
        raise ValueError(f"feature {key!r}: topic must be an absolute topic name, got {topic!r}")
    lists = {}
    for name in ("joints", "names"):
        value = spec.get(name)
        if value is not None and (
            not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
        ):
            raise ValueError(f"feature {key!r}: {name} must be a list of strings, got {value!r}")
        lists[name] = tuple(value) if value else None
    field = spec.get("field")
    if field is not None and not isinstance(field, str):
        raise ValueError(f"feature {key!r}: field must be a string, got {field!r}")
    if key.startswith(IMAGE_PREFIX) and (field or lists["joints"] or lists["names"]):
        raise ValueError(f"camera feature {key!r} takes only a topic")
    return TopicFeature(key, topic, field, lists["joints"], lists["names"])
