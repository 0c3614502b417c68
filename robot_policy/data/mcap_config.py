"""The topic-to-feature mapping for importing rosbag2 MCAP recordings (config/mcap_import.yaml).

Unknown keys are errors, not ignored: a typo in a mapping would otherwise silently drop a
feature from every imported episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robot_policy.features import IMAGE_PREFIX


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
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ValueError(f"no import config at {path}") from None
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from err
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def from_dict(cls, data: Any) -> ImportConfig:
        top = _mapping(
            data, "the config", {"fps", "task", "robot_type", "clock", "episodes", "features"}
        )
        fps = top.get("fps")
        if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
            raise ValueError(f"fps must be a positive integer, got {fps!r}")
        task = top.get("task")
        if not isinstance(task, str) or not task:
            raise ValueError(f"task must be a non-empty string, got {task!r}")
        clock = top.get("clock", "log_time")
        if clock not in ("log_time", "header"):
            raise ValueError(f"clock must be 'log_time' or 'header', got {clock!r}")
        episodes = _mapping(top.get("episodes", {}), "episodes", {"split", "topic", "gap_s"})
        split = episodes.get("split", "bag")
        if split not in ("bag", "gap"):
            raise ValueError(f"episodes.split must be 'bag' or 'gap', got {split!r}")
        gap_topic = episodes.get("topic")
        gap_s = episodes.get("gap_s", 1.0)
        if split == "gap":
            if not isinstance(gap_topic, str) or not gap_topic.startswith("/"):
                raise ValueError(f"episodes.split 'gap' needs episodes.topic, got {gap_topic!r}")
            if not isinstance(gap_s, int | float) or gap_s <= 0:
                raise ValueError(f"episodes.gap_s must be a positive number, got {gap_s!r}")
        raw = _mapping(top.get("features"), "features", None)
        if not raw:
            raise ValueError("features must map at least one feature to a topic")
        features = tuple(_feature(key, spec) for key, spec in raw.items())
        robot_type = top.get("robot_type")
        if robot_type is not None and not isinstance(robot_type, str):
            raise ValueError(f"robot_type must be a string or null, got {robot_type!r}")
        return cls(fps, task, features, robot_type, clock, split, gap_topic, float(gap_s))


def _mapping(value: Any, what: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown} (known: {sorted(allowed or ())})")
    return value


def _feature(key: Any, spec: Any) -> TopicFeature:
    if not isinstance(key, str) or "/" in key:
        raise ValueError(f"feature name {key!r} must be a string without '/'")
    spec = _mapping(spec, f"feature {key!r}", {"topic", "field", "joints", "names"})
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
