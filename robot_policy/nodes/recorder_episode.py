"""recorder_node's bookkeeping, free of rclpy: a service request handed to the recording
thread, and the cadence figures of the episode in progress (what a stop reports)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Request:
    """A service request handed to the recording thread, answered through `done`."""

    action: str
    time: float
    done: threading.Event = field(default_factory=threading.Event)
    success: bool = False
    message: str = ""

    def answer(self, success: bool, message: str) -> None:
        self.success, self.message = success, message
        self.done.set()


@dataclass
class Episode:
    """Cadence figures of the episode in progress."""

    requested: float
    writes: list[float] = field(default_factory=list)  # node time each frame was written
    frame_times: list[float] = field(default_factory=list)
    stale: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)

    def report(self, cameras: list[str], period: float) -> dict[str, Any]:
        frames = len(self.writes)
        lag = (np.array(self.writes) - np.array(self.frame_times)) * 1e3
        span = self.writes[-1] - self.writes[0] if frames > 1 else math.nan
        slots = frames * len(cameras)
        drops = sum(self.stale.get(c, 0) for c in cameras)
        seconds = frames * period
        return {
            "frames": frames,
            "seconds": seconds,
            "origin": self.frame_times[0] if frames else None,
            "record_hz": (frames - 1) / span if span > 0 else None,
            "frame_latency_ms_p50": float(np.percentile(lag, 50)) if frames else None,
            "frame_latency_ms_p99": float(np.percentile(lag, 99)) if frames else None,
            "frame_drop_rate": drops / slots if slots else None,
            "stale_frames": dict(self.stale),
            "received_hz": {k: n / seconds for k, n in self.received.items()} if frames else {},
        }
