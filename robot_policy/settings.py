"""Settings as dataclasses: each field's default, description and valid range stated once.

A config dataclass declares its fields with `setting(...)`; the loaders, the ROS parameter
declarations, the graph-file checks and `robot-policy up --print-params` all read that one
declaration (the role generate_parameter_library's YAML plays for ros2_controllers).
Config files shipped with the package are found with `config_path`, which works from a
checkout and from an installed (non-editable) package alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

DESCRIPTION = "description"
CHOICES = "choices"
LOW = "low"
HIGH = "high"


def setting(
    default: Any,
    description: str,
    *,
    choices: Sequence[Any] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A dataclass field with its description and, optionally, its allowed values or closed
    range [low, high]. Mutable defaults (lists, dicts) are copied per instance."""
    metadata = {DESCRIPTION: description}
    if choices is not None:
        metadata[CHOICES] = tuple(choices)
    if low is not None:
        metadata[LOW] = low
    if high is not None:
        metadata[HIGH] = high
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def config_path(*parts: str) -> Path:
    """A file under the package's `config/` folder (`config_path("safety", "panda.yaml")`).

    `config/` installs as the data package `robot_policy.config`, so this resolves in a
    checkout, an editable install and a wheel install; a missing file is a clear error.
    """
    path = Path(str(resources.files("robot_policy.config").joinpath(*parts)))
    if not path.is_file():
        raise FileNotFoundError(f"no config file {'/'.join(parts)} in {path.parent}")
    return path
