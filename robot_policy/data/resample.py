"""Live streams resampled to a dataset's frame rate by timestamp (zero-order hold).

A recorder on a ROS graph sees joint states at 120 Hz, commands at 100 Hz and camera frames at
10-30 Hz, each on its own schedule and with its own delay. A dataset wants one row per 1/fps.
Frame k of an episode holds, for every stream, the newest sample stamped at or before
t_k = origin + k/fps: what a controller running at fps would have seen then. It is *final*
once every stream has delivered a sample stamped after t_k (streams arrive in stamp order), so
frames are emitted as soon as they can no longer change, whatever each stream's delay.

An episode's origin is the first instant at which every stream has published since it was
begun: no frame may hold a value from before (a state from before a sim reset, the previous
episode's last command). `robot_policy.data.mcap_import` applies the same rule offline.
Nothing here reads a clock or imports ROS: the node hands in stamps, tests hand in numbers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Slack for float round-off when a stamp lands exactly on a frame time.
_EPS = 1e-9


@dataclass(frozen=True)
class Frame:
    """One dataset row: each stream's held value and how old it was at `time` (s)."""

    index: int
    time: float
    values: dict[str, Any]
    ages: dict[str, float]


class ZeroOrderHold:
    """Samples of named streams in, frames at `fps` out; one episode at a time.

    Between episodes only each stream's newest sample is kept (the recorder needs it to know
    shapes before an episode starts); during one, samples older than the value held for the
    next frame are dropped as frames are emitted, so memory stays bounded by the streams' delay.
    """

    def __init__(self, keys: Iterable[str], fps: float) -> None:
        self.keys = tuple(keys)
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise ValueError(f"need distinct stream names, got {self.keys}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self._samples: dict[str, deque[tuple[float, Any]]] = {k: deque() for k in self.keys}
        self._begun: float | None = None  # begin() time of the episode in progress
        self.origin: float | None = None  # time of frame 0, once every stream has published
        self._next = 0  # index of the next frame to emit
        self.out_of_order = 0  # samples dropped for being older than their stream's newest

    @property
    def recording(self) -> bool:
        return self._begun is not None

    def latest(self, key: str) -> tuple[float, Any] | None:
        """The newest (stamp, value) of a stream, or None if it never published."""
        samples = self._samples[key]
        return samples[-1] if samples else None

    def missing(self) -> list[str]:
        """Streams that have never published."""
        return [k for k in self.keys if not self._samples[k]]

    def add(self, key: str, stamp: float, value: Any) -> None:
        samples = self._samples[key]
        if samples and stamp < samples[-1][0]:
            self.out_of_order += 1
            return
        if not self.recording:
            samples.clear()
        samples.append((stamp, value))
        if self.recording and self.origin is None:
            self._find_origin()

    def begin(self, after: float) -> None:
        """Start an episode whose frames hold only samples stamped at or after `after`."""
        if self.recording:
            raise RuntimeError("an episode is already in progress")
        self._begun, self.origin, self._next = after, None, 0
        self._find_origin()

    def frame_time(self, index: int) -> float:
        assert self.origin is not None
        return self.origin + index * self.period

    def passed(self, time: float) -> bool:
        """Whether every stream has a sample stamped after `time` (the hold at `time` is final)."""
        return all(s and s[-1][0] > time + _EPS for s in self._samples.values())

    def ready(self) -> list[Frame]:
        """Every frame that became final since the last call, in order."""
        frames = []
        while self.origin is not None and self.passed(self.frame_time(self._next)):
            frames.append(self._emit())
        return frames

    def finish(self, end: float) -> list[Frame]:
        """End the episode: the frames not yet emitted with times up to `end`, holding what has
        arrived (a stream's later sample could still have changed them; the caller decides how
        long to wait for `passed(end)` first)."""
        frames = []
        while self.origin is not None and self.frame_time(self._next) <= end + _EPS:
            frames.append(self._emit())
        self.abort()
        return frames

    def abort(self) -> None:
        """Drop the episode in progress; each stream keeps its newest sample."""
        self._begun, self.origin, self._next = None, None, 0
        for samples in self._samples.values():
            while len(samples) > 1:
                samples.popleft()

    def _find_origin(self) -> None:
        assert self._begun is not None
        firsts = []
        for samples in self._samples.values():
            while len(samples) > 1 and samples[0][0] < self._begun - _EPS:
                samples.popleft()
            if not samples or samples[0][0] < self._begun - _EPS:
                return  # nothing from this stream since begin() yet
            firsts.append(samples[0][0])
        self.origin = max(firsts)

    def _emit(self) -> Frame:
        time = self.frame_time(self._next)
        values, ages = {}, {}
        for key, samples in self._samples.items():
            while len(samples) > 1 and samples[1][0] <= time + _EPS:
                samples.popleft()
            stamp, values[key] = samples[0]
            ages[key] = time - stamp
        frame = Frame(self._next, time, values, ages)
        self._next += 1
        return frame
