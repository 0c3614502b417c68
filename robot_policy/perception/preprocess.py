"""From a camera frame to the policy's image input: undistort, crop, resize, RGB.

The order matters: undistortion needs the full-resolution pixel grid its intrinsics describe,
the crop is taken in undistorted pixels (where straight edges are straight), and resizing comes
last with area interpolation when shrinking, because nearest or bilinear sampling of a 640x480
frame down to 96x96 aliases fine texture into noise the policy was never trained on. Colour
conversion runs on the small output, where it is cheapest.

`config/perception.yaml` documents the settings; `PreprocessConfig.from_yaml` reads it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from robot_policy.recent import RecentWindow
from robot_policy.settings import check_keys, load, problem, setting

from .calibration import CameraCalibration

Box = tuple[int, int, int, int]  # x, y, width, height in input pixels


@dataclass(frozen=True, eq=False)
class PreprocessConfig:
    """What the policy wants (`output_size`) and how to get there from one camera.

    `crop` is (x, y, width, height) in undistorted input pixels; None takes the largest centred
    box with the output's aspect ratio, so nothing is stretched. `calibration` None skips
    undistortion (a simulator's pinhole camera has none).
    """

    output_size: tuple[int, int] = setting(
        (96, 96), "published image [height, width]: the policy's image_size", low=1
    )
    crop: Box | None = setting(
        None,
        "[x, y, width, height] of the undistorted input to keep; null = the largest centred "
        "box with the output's aspect ratio",
        low=0,
    )
    calibration: CameraCalibration | None = setting(
        None, "camera_calibration or CameraInfo YAML (a path) or mapping; null = no undistortion"
    )

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in self.output_size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"output_size must be [height, width] > 0, got {self.output_size}")
        object.__setattr__(self, "output_size", size)
        if self.crop is not None:
            box = tuple(int(v) for v in self.crop)
            if len(box) != 4 or min(box[:2]) < 0 or min(box[2:]) <= 0:
                raise ValueError(
                    f"crop must be [x, y, width, height] with x, y >= 0 and a positive size, "
                    f"got {self.crop}"
                )
            object.__setattr__(self, "crop", box)
            calibration = self.calibration
            if calibration is not None and (
                box[0] + box[2] > calibration.width or box[1] + box[3] > calibration.height
            ):
                raise ValueError(
                    f"crop {list(box)} does not fit in the calibrated "
                    f"{calibration.width}x{calibration.height} image"
                )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], base_dir: Path | None = None) -> PreprocessConfig:
        """From plain data (`settings.load`); `calibration` is a file path (relative to
        `base_dir`) or a mapping.

        Unknown keys are an error: a misspelt `crop` silently ignored would feed the policy
        stretched images that still look plausible.
        """
        values = dict(check_keys(values, [f.name for f in fields(cls)], ""))
        calibration = values.get("calibration")
        if isinstance(calibration, str | Path):
            path = Path(calibration)
            values["calibration"] = CameraCalibration.from_yaml(
                path if path.is_absolute() or base_dir is None else base_dir / path
            )
        elif isinstance(calibration, Mapping):
            values["calibration"] = CameraCalibration.from_dict(calibration)
        elif calibration is not None and not isinstance(calibration, CameraCalibration):
            raise problem("calibration", f"must be a path or a mapping, got {calibration!r}")
        return load(cls, values, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> PreprocessConfig:
        path = Path(path)
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a mapping of perception settings")
        try:
            return cls.from_dict(data, base_dir=path.parent)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error


def center_box(width: int, height: int, aspect: float) -> Box:
    """The largest box of `aspect` (width / height) centred in a width x height image."""
    box_w = min(width, round(height * aspect))
    box_h = min(height, round(width / aspect))
    return (width - box_w) // 2, (height - box_h) // 2, box_w, box_h


@dataclass(frozen=True)
class _Plan:
    """Everything fixed by the input size, computed once per size rather than per frame."""

    box: Box
    maps: tuple[np.ndarray, np.ndarray] | None
    interpolation: int


class Preprocessor:
    """Turns (H, W, 3) uint8 frames into `output_size` RGB frames and times each call."""

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config or PreprocessConfig()
        self.latency = RecentWindow()
        self._plan_size: tuple[int, int] | None = None
        self._plan: _Plan | None = None

    def process(self, image: np.ndarray, *, bgr: bool = False) -> np.ndarray:
        """The policy input for one frame; `bgr` for frames straight from OpenCV.

        Raises ValueError with the reason on input it cannot use (wrong dtype or shape, empty,
        a size the calibration does not describe); callers decide whether to drop the frame.
        """
        started = time.perf_counter()
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array, got {getattr(image, 'dtype', type(image))}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"empty image of shape {image.shape}")
        plan = self._plan_for(image.shape[1], image.shape[0])
        x, y, w, h = plan.box
        if plan.maps is not None:
            cropped = cv2.remap(image, *plan.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        else:
            cropped = image[y : y + h, x : x + w]
        out_h, out_w = self.config.output_size
        if (h, w) != (out_h, out_w):
            cropped = cv2.resize(cropped, (out_w, out_h), interpolation=plan.interpolation)
        if bgr:
            cropped = cv2.cvtColor(cropped, cv2.COLOR_BGR2RGB)
        result = np.ascontiguousarray(cropped)
        self.latency.add((time.perf_counter() - started) * 1e3)
        return result

    def _plan_for(self, width: int, height: int) -> _Plan:
        if self._plan is not None and self._plan_size == (width, height):
            return self._plan
        config = self.config
        calibration = config.calibration
        if calibration is not None and (calibration.width, calibration.height) != (width, height):
            raise ValueError(
                f"the calibration is for {calibration.width}x{calibration.height} images but this "
                f"frame is {width}x{height}; calibrate at the camera's resolution"
            )
        out_h, out_w = config.output_size
        box = config.crop or center_box(width, height, out_w / out_h)
        x, y, w, h = box
        if x + w > width or y + h > height:
            raise ValueError(f"crop {list(box)} does not fit in a {width}x{height} image")
        shrinking = out_w < w and out_h < h
        self._plan = _Plan(
            box=box,
            maps=None if calibration is None else calibration.undistort_maps(box),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        self._plan_size = (width, height)
        return self._plan
