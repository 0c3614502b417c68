"""Camera intrinsics and distortion, read in the two forms ROS users already have.

A calibration comes either as the YAML that ROS's `camera_calibration` tool and
camera_info_manager write (`image_width`, `camera_matrix: {rows, cols, data}`, ...) or as a
sensor_msgs/CameraInfo-like mapping (`width`, `k`, `d`, `r`, `p`, ...), so a file from an
existing calibration, or a CameraInfo echoed from a driver, works without conversion.
Rectification follows image_proc: pixels are mapped through R into the projection P's
intrinsics (P[:3, :3]), or back into K when P is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

# Coefficient counts each model accepts (OpenCV's pinhole models take 4, 5, 8, 12 or 14; the
# fisheye model takes exactly k1..k4). An empty list means "no distortion".
_MODELS = {
    "plumb_bob": (0, 4, 5),
    "rational_polynomial": (0, 8),
    "equidistant": (0, 4),
}
_CALIBRATION_KEYS = {
    "image_width",
    "image_height",
    "camera_name",
    "camera_matrix",
    "distortion_model",
    "distortion_coefficients",
    "rectification_matrix",
    "projection_matrix",
}
_CAMERA_INFO_KEYS = {"header", "height", "width", "distortion_model", "d", "k", "r", "p"}
# Accepted only at their "off" values (no binning, no region of interest).
_CAMERA_INFO_OFF_ONLY = {"binning_x", "binning_y", "roi"}


def _matrix(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """A matrix from a flat list or from camera_calibration's `{rows, cols, data}` mapping."""
    data = value.get("data") if isinstance(value, Mapping) else value
    array = np.asarray(data if data is not None else [], dtype=np.float64)
    if array.size != shape[0] * shape[1] or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} needs {shape[0] * shape[1]} finite numbers, got {data!r}")
    return array.reshape(shape)


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """Intrinsics of one camera at one resolution (they are meaningless at any other)."""

    width: int
    height: int
    camera_matrix: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = "plumb_bob"
    rectification: np.ndarray = field(default_factory=lambda: np.eye(3))
    projection: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"calibration size must be positive, got {self.width}x{self.height}")
        counts = _MODELS.get(self.distortion_model)
        if counts is None:
            raise ValueError(
                f"unsupported distortion_model {self.distortion_model!r}; "
                f"use one of {sorted(_MODELS)}"
            )
        distortion = np.asarray(self.distortion, dtype=np.float64).ravel()
        if distortion.size not in counts or not np.all(np.isfinite(distortion)):
            raise ValueError(
                f"{self.distortion_model} takes {' or '.join(map(str, counts))} finite "
                f"distortion coefficients, got {distortion.tolist()}"
            )
        object.__setattr__(self, "distortion", distortion)
        object.__setattr__(self, "camera_matrix", _matrix(self.camera_matrix, (3, 3), "K"))
        object.__setattr__(self, "rectification", _matrix(self.rectification, (3, 3), "R"))
        if self.projection is not None:
            object.__setattr__(self, "projection", _matrix(self.projection, (3, 4), "P"))
        if self.camera_matrix[0, 0] <= 0 or self.camera_matrix[1, 1] <= 0:
            raise ValueError("camera_matrix needs positive focal lengths fx, fy")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CameraCalibration:
        """From camera_calibration YAML keys or CameraInfo field names; unknown keys are errors."""
        keys = set(values)
        if "camera_matrix" in keys or "image_width" in keys:
            unknown = sorted(keys - _CALIBRATION_KEYS)
            if unknown:
                raise ValueError(
                    f"unknown calibration keys {unknown}; valid keys: {sorted(_CALIBRATION_KEYS)}"
                )
            return cls._build(
                values.get("image_width"),
                values.get("image_height"),
                values.get("camera_matrix"),
                values.get("distortion_coefficients"),
                values.get("distortion_model", "plumb_bob"),
                values.get("rectification_matrix"),
                values.get("projection_matrix"),
            )
        binning = max(int(values.get("binning_x") or 0), int(values.get("binning_y") or 0))
        if binning > 1 or _is_set(values.get("roi")):
            raise ValueError("CameraInfo binning and region of interest are not supported")
        unknown = sorted(keys - _CAMERA_INFO_KEYS - _CAMERA_INFO_OFF_ONLY)
        if unknown:
            raise ValueError(
                f"unknown calibration keys {unknown}; expected camera_calibration YAML keys "
                f"{sorted(_CALIBRATION_KEYS)} or CameraInfo fields {sorted(_CAMERA_INFO_KEYS)}"
            )
        return cls._build(
            values.get("width"),
            values.get("height"),
            values.get("k"),
            values.get("d"),
            values.get("distortion_model") or "plumb_bob",
            values.get("r"),
            values.get("p"),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> CameraCalibration:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a mapping of calibration keys")
        try:
            return cls.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error

    @classmethod
    def _build(
        cls,
        width: Any,
        height: Any,
        k: Any,
        d: Any,
        model: str,
        r: Any,
        p: Any,
    ) -> CameraCalibration:
        if width is None or height is None or k is None:
            raise ValueError("a calibration needs the image width, height and camera matrix")
        distortion = d.get("data") if isinstance(d, Mapping) else d
        return cls(
            width=int(width),
            height=int(height),
            camera_matrix=_matrix(k, (3, 3), "camera_matrix"),
            distortion=np.asarray([] if distortion is None else distortion, dtype=np.float64),
            distortion_model=str(model),
            rectification=_matrix(r, (3, 3), "rectification") if _is_set(r) else np.eye(3),
            projection=_matrix(p, (3, 4), "projection") if _is_set(p) else None,
        )

    @property
    def rectified_matrix(self) -> np.ndarray:
        """The intrinsics of the undistorted image: P[:3, :3] (image_proc's choice), else K."""
        return self.camera_matrix if self.projection is None else self.projection[:, :3]

    def undistort_maps(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Remap tables producing only the crop `box` (x, y, w, h) of the undistorted image.

        Shifting the principal point by the box origin folds the crop into the maps, so the
        remap touches only the pixels the policy keeps (a 480x480 box from 640x480 saves a
        quarter of the work) and no full-size intermediate image is made.
        """
        x, y, w, h = box
        target = self.rectified_matrix.copy()
        target[0, 2] -= x
        target[1, 2] -= y
        if self.distortion_model == "equidistant":
            coefficients = self.distortion if self.distortion.size else np.zeros(4)
            return cv2.fisheye.initUndistortRectifyMap(
                self.camera_matrix, coefficients, self.rectification, target, (w, h), cv2.CV_16SC2
            )
        return cv2.initUndistortRectifyMap(
            self.camera_matrix, self.distortion, self.rectification, target, (w, h), cv2.CV_16SC2
        )


def _is_set(value: Any) -> bool:
    """CameraInfo fills absent matrices with zeros; those mean "not given", not "all zero"."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        data = value.get("data")
        if data is None:
            return any(_is_set(v) for v in value.values())
        value = data
    return bool(np.any(np.asarray(value, dtype=np.float64) != 0))
