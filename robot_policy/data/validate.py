"""What a `DatasetWriter` accepts: each frame checked against the dataset's features, and the
settings of an append checked against the dataset already there.

Both refuse with an error that names what is wrong, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .layout import (
    DEFAULT_FEATURES,
    DatasetFormatError,
    DatasetMismatchError,
    camera_keys,
    comparable_features,
)
from .video import DEFAULT_VIDEO_CODEC, canonical_codec

# ---- frames -----------------------------------------------------------------------------------


def check_frame(
    features: dict[str, dict[str, Any]], frame: dict[str, Any], task: str
) -> dict[str, np.ndarray]:
    """The frame's values as stored, one per caller feature, or a ValueError saying what is
    wrong (a task that is not a non-empty string, missing or extra keys, a bad value)."""
    if not isinstance(task, str) or not task:
        raise ValueError(f"task must be a non-empty string, got {task!r}")
    if not isinstance(frame, dict):
        raise ValueError(f"frame must be a dict of feature values, got {type(frame).__name__}")
    expected = [k for k in features if k not in DEFAULT_FEATURES]
    missing = [k for k in expected if k not in frame]
    extra = [k for k in frame if k not in features or k in DEFAULT_FEATURES]
    if missing or extra:
        raise ValueError(f"frame keys do not match the features: missing {missing}, extra {extra}")
    return {key: check_value(key, features[key], frame[key]) for key in expected}


def check_value(key: str, feature: dict[str, Any], value: Any) -> np.ndarray:
    """The value as stored, or a ValueError naming the key and what is wrong."""
    if feature["dtype"] == "video":
        shape = tuple(feature["shape"])
        if not isinstance(value, np.ndarray) or value.dtype != np.uint8:
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{key}: camera frames must be uint8 numpy arrays, got {kind}")
        if value.shape != shape:
            raise ValueError(f"{key}: expected image shape {shape}, got {value.shape}")
        return np.ascontiguousarray(value)
    array = np.asarray(value)
    wants_int = feature["dtype"].startswith("int")
    if array.dtype.kind not in "iuf" or (wants_int and array.dtype.kind == "f"):
        raise ValueError(f"{key}: expected {feature['dtype']} values, got dtype {array.dtype}")
    shape = tuple(feature["shape"])
    if array.shape != shape and not (shape == (1,) and array.shape == ()):
        raise ValueError(f"{key}: expected shape {shape}, got {array.shape}")
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        stored = array.astype(feature["dtype"]).reshape(shape)
    if stored.dtype.kind == "f" and not np.isfinite(stored).all():
        raise ValueError(f"{key}: non-finite value (NaN or inf) in {stored.tolist()}")
    return stored


# ---- appending --------------------------------------------------------------------------------


def check_append(
    root: Path,
    info: dict[str, Any],
    fps: int,
    features: dict[str, dict[str, Any]],
    robot_type: str | None,
    video_codec: str | None,
) -> str:
    """The encoder to append to the dataset at `root` (holding `info`) with, or a
    DatasetMismatchError naming every setting asked for that differs from the dataset's."""
    differences = []
    if info["fps"] != fps:
        differences.append(f"fps {info['fps']} in the dataset, {fps} requested")
    have, want = comparable_features(info["features"]), comparable_features(features)
    for key in sorted(set(have) | set(want)):
        if have.get(key) != want.get(key):
            differences.append(
                f"feature {key!r}: dataset has {_describe(have.get(key))}, "
                f"requested {_describe(want.get(key))}"
            )
    recorded = info.get("robot_type")
    if robot_type is not None and recorded is not None and robot_type != recorded:
        differences.append(f"robot_type {recorded!r} in the dataset, {robot_type!r} requested")
    codecs = {
        info["features"][key].get("info", {}).get("video.codec")
        for key in camera_keys(info["features"])
    } - {None}
    if video_codec is not None and codecs and canonical_codec(video_codec) not in codecs:
        differences.append(
            f"video codec {sorted(codecs)} in the dataset, {video_codec!r} requested"
        )
    if differences:
        raise DatasetMismatchError(f"cannot append to {root}: " + "; ".join(differences))
    encoder = video_codec or _encoder_for(codecs)
    canonical_codec(encoder)
    return encoder


def _describe(spec: tuple | None) -> str:
    if spec is None:
        return "no such feature"
    dtype, shape, names = spec
    return f"dtype {dtype} shape {list(shape)}" + (f" names {names}" if names else "")


def _encoder_for(codecs: set[str]) -> str:
    """The encoder to keep appending with to a dataset whose videos use `codecs`."""
    if not codecs:
        return DEFAULT_VIDEO_CODEC
    if len(codecs) > 1:
        raise DatasetFormatError(f"cameras use different codecs {sorted(codecs)}; pass video_codec")
    return {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}.get(*codecs, *codecs)
