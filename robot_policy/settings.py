"""Settings as dataclasses: each field's default, description and valid range stated once.

A config dataclass declares its fields with `setting(...)`; the loaders, the ROS parameter
declarations, the graph-file checks and `robot-policy up --print-params` all read that one
declaration (the role generate_parameter_library's YAML plays for ros2_controllers).
Config files shipped with the package are found with `config_path`, which works from a
checkout and from an installed (non-editable) package alike.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

DESCRIPTION = "description"
CHOICES = "choices"
LOW = "low"
HIGH = "high"
T = TypeVar("T")


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


# --- strict loading: plain data (YAML, JSON, ROS parameters) -> a validated dataclass ---------

REQUIRED = dataclasses.MISSING  # `Parameter.default` of a field that has no default


@dataclass(frozen=True)
class Parameter:
    """One flattened setting: what `declare_parameters`, the graph checks and
    `--print-params` need, with a dotted `name` for fields of nested dataclasses."""

    name: str
    default: Any
    type: Any
    description: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None


def problem(where: str, message: str) -> ValueError:
    """The one wording of a settings error: `<dotted.path>: <what is wrong>`, so a message
    says where the bad value is, whichever loader or file it came through."""
    return ValueError(f"{where}: {message}" if where else message)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations (modules use `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def check_keys(data: object, known: Iterable[str], where: str) -> Mapping[str, Any]:
    """`data` as a mapping whose keys are all in `known`; anything else is an error that names
    the stray keys and lists the valid ones (a typo must not silently leave a default)."""
    if not isinstance(data, Mapping):
        raise problem(where, f"must be a mapping, got {data!r}")
    known = sorted(known)
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise problem(where, f"unknown keys {unknown}; known: {known}")
    return data


def load(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """An instance of dataclass `cls` from plain data, strictly.

    Unknown keys are errors, missing keys take the field's default, nested dataclasses load
    from nested mappings, every value is coerced by its annotation and checked against the
    field's choices and range; the class's own `__post_init__` then checks across fields.
    Every error names the dotted path of the value (`where` is the prefix).
    """
    data = check_keys({} if data is None else data, [f.name for f in _init_fields(cls)], where)
    hints = _hints(cls)
    values = {}
    for f in _init_fields(cls):
        path = _join(where, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise problem(path, "is required")
            continue
        value = coerce(_over_default(f, hints[f.name], data[f.name]), hints[f.name], path)
        check_value(value, f.metadata, path)
        values[f.name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise problem(where, str(err)) from err


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _over_default(f: dataclasses.Field, kind: Any, value: Any) -> Any:
    """A partial mapping for a nested dataclass overrides the field's default instance, not
    the nested class's own defaults (ControlConfig's scheduler interpolates by default)."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
        base = _default(f)
        if isinstance(base, kind):
            return {**{g.name: getattr(base, g.name) for g in _init_fields(kind)}, **value}
    return value


def _init_fields(cls: type) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    return [f for f in dataclasses.fields(cls) if f.init]


_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` converted to `annotation`: float accepts int; int accepts integral floats but
    no bools; bool and str are strict; tuples and lists come from YAML lists; `X | None`,
    mappings and nested dataclasses are followed; any other class must be an instance."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, where)
            except ValueError as err:
                errors.append(err)
        if len(options) == 1:
            raise errors[0]
        raise problem(where, f"must be one of {_describe(annotation)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise problem(where, f"must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            raise problem(where, f"must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise problem(where, f"must be a list of {len(args)} values, got {value!r}")
            items = [
                coerce(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
        else:
            item = args[0] if args else Any
            items = [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(items) if origin is list else tuple(items)
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise problem(where, f"must be a mapping, got {value!r}")
        key, item = args if args else (Any, Any)
        return {
            coerce(k, key, where): coerce(v, item, _join(where, str(k))) for k, v in value.items()
        }
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else load(annotation, value, where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise problem(where, f"must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise problem(where, f"must be an integer, got {value!r}")
        return value
    if annotation is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise problem(where, f"must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise problem(where, f"must be a string, got {value!r}")
        return value
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise problem(where, f"must be {_describe(annotation)}, got {value!r}")
    return value


def _describe(annotation: Any) -> str:
    if annotation in _NAMES:
        return _NAMES[annotation]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def check_value(value: Any, metadata: Mapping[str, Any], where: str) -> None:
    """The field's `choices` and closed range [low, high] (each element of a list)."""
    if value is None:
        return
    if isinstance(value, list | tuple) and not (CHOICES in metadata and value in metadata[CHOICES]):
        for i, item in enumerate(value):
            check_value(item, metadata, f"{where}[{i}]")
        return
    choices = metadata.get(CHOICES)
    if choices is not None and value not in choices:
        raise problem(where, f"must be one of {list(choices)}, got {value!r}")
    low, high = metadata.get(LOW), metadata.get(HIGH)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if low is not None and not value >= low:  # `not >=`: NaN is out of every range
            raise problem(where, f"must be >= {low}, got {value}")
        if high is not None and not value <= high:
            raise problem(where, f"must be <= {high}, got {value}")


def from_yaml(cls: type[T], path: str | Path) -> T:
    """`load` from a YAML file; an unreadable file, bad YAML or a bad value is a ValueError
    that names the file (and the value's dotted path inside it)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    try:
        return load(cls, data, "")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def flatten(cls: type, prefix: str = "", defaults: object | None = None) -> list[Parameter]:
    """Every leaf setting of `cls` with its dotted name. A nested dataclass's defaults are the
    enclosing field's default instance (ControlConfig's scheduler interpolates, SchedulerConfig
    alone does not), so what is listed is what `load({})` would give."""
    hints = _hints(cls)
    out: list[Parameter] = []
    for f in _init_fields(cls):
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        kind = hints[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            nested = default if isinstance(default, kind) else None
            out += flatten(kind, _join(prefix, f.name), nested)
            continue
        meta = f.metadata
        out.append(
            Parameter(
                _join(prefix, f.name),
                default,
                kind,
                meta.get(DESCRIPTION, ""),
                meta.get(CHOICES),
                meta.get(LOW),
                meta.get(HIGH),
            )
        )
    return out


def from_flat(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """`load` from dotted names (`{"scheduler.interpolate": True}`), as ROS parameters and
    `--set node.name=value` overrides arrive."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = name.split(".")
        level = nested
        for i, part in enumerate(parents):
            level = level.setdefault(part, {})
            if not isinstance(level, dict):
                raise problem(_join(where, ".".join(parents[: i + 1])), "is not a group")
        level[leaf] = value
    return load(cls, nested, where)
