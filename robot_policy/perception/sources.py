"""Camera frames from OpenCV: a device index, a video file, or a stream URL.

Each frame carries the clock reading taken as soon as OpenCV hands the frame over: the closest
a userspace reader gets to the exposure time, and the stamp a policy's action chunk is aligned
to downstream. Files also report their own presentation time, so a recording replays with its
real frame spacing known.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 in OpenCV's BGR order
    stamp: float  # clock reading right after the frame was grabbed, in seconds
    index: int  # frames read from this source so far, from 0
    position: float | None  # presentation time within a file in seconds; None for live sources


class OpenCVSource:
    """One OpenCV capture; `spec` is a device index ("0"), a file path, or a URL ("rtsp://...").

    Live sources keep OpenCV's buffer at one frame where the backend allows it: a reader slower
    than the camera would otherwise be handed frames several periods old. `frame_size` (width,
    height) asks a device for a resolution, e.g. the one its calibration was made at.
    """

    def __init__(
        self,
        spec: str | int | os.PathLike[str],
        *,
        frame_size: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        text = str(spec).strip()
        if not text:
            raise ValueError("an empty camera source; give a device index, a file or a URL")
        self.spec = text
        self.kind = "device" if text.isdigit() else "stream" if "://" in text else "file"
        if self.kind == "file" and not Path(text).is_file():
            raise FileNotFoundError(
                f"camera source {text!r} is neither a device index, a URL, "
                "nor an existing video file"
            )
        self._capture = cv2.VideoCapture(int(text) if self.kind == "device" else text)
        if not self._capture.isOpened():
            raise OSError(f"OpenCV could not open camera source {text!r} ({self.kind})")
        if self.live:
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if frame_size is not None and self.kind == "device":
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, frame_size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, frame_size[1])
        self._clock = clock
        self._index = 0

    @property
    def live(self) -> bool:
        """Devices and streams: a failed read may recover; for a file it is the end."""
        return self.kind != "file"

    @property
    def fps(self) -> float:
        """The rate the source reports (0 when it does not know)."""
        return float(self._capture.get(cv2.CAP_PROP_FPS))

    def read(self) -> Frame | None:
        """The next frame, or None when none came (end of file, a camera that stopped)."""
        ok, image = self._capture.read()
        stamp = self._clock()
        if not ok or image is None:
            return None
        position = None if self.live else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
        frame = Frame(image=image, stamp=stamp, index=self._index, position=position)
        self._index += 1
        return frame

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> OpenCVSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
