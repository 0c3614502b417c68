"""Action chunks on the wire: trajectory_msgs/JointTrajectory <-> `TimedChunk`.

A chunk is a JointTrajectory whose header.stamp is the time of the observation it was computed
from and whose points are the actions for stamp + k·dt (time_from_start = k·dt). That keeps it a
standard message any ROS tool can plot, while the control node can still place it in time.
Everything a malformed chunk can get wrong is checked here, so the control loop only ever sees
valid chunks; the reason for a rejection goes to the diagnostics.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.serialization import deserialize_message, serialize_message
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy.nodes.common import to_seconds, to_stamp
from robot_policy.runtime.chunks import ChunkLimits, TimedChunk

# Points must be evenly spaced to this tolerance (s): a chunk is a sampled sequence, not a spline.
_SPACING_TOLERANCE = 1e-4
# Bytes allowed beyond the largest in-bounds chunk: the header's frame_id, which is not checked.
_HEADER_SLACK = 64 * 1024
DEFAULT_LIMITS = ChunkLimits()
# Joint names walked past in the bytes before a message is refused for having too many: far
# above any arm's, far below what costs time (each is a few struct reads).
_MAX_NAMES = 64


class ChunkRejected(ValueError):
    """A chunk message the control node refuses; the message says why."""


def chunk_to_msg(chunk: TimedChunk, joint_names: Sequence[str]) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(joint_names))
    msg.header.stamp = to_stamp(chunk.stamp)
    for k, action in enumerate(chunk.actions):
        offset = k * chunk.dt
        point = JointTrajectoryPoint(positions=action.tolist())
        point.time_from_start = Duration(sec=int(offset), nanosec=int(round((offset % 1) * 1e9)))
        msg.points.append(point)
    return msg


def chunk_from_msg(
    msg: JointTrajectory,
    joint_names: Sequence[str],
    now: float | None = None,
    limits: ChunkLimits = DEFAULT_LIMITS,
) -> TimedChunk:
    """The chunk in `joint_names` order; raises ChunkRejected naming the first problem.

    The counts are checked first, so a huge message costs O(1) before it is refused rather
    than a pass of per-point Python work. `now` (the receiver's clock) bounds how far ahead
    the chunk may start; None skips that one check (no clock to compare with).
    """
    if len(msg.points) > limits.max_points:
        raise ChunkRejected(f"{len(msg.points)} points, over max_chunk_points {limits.max_points}")
    if len(msg.joint_names) != len(joint_names):
        raise ChunkRejected(
            f"joint names: {len(msg.joint_names)} given, the controller has {len(joint_names)}"
        )
    names = list(msg.joint_names)
    if sorted(names) != sorted(joint_names) or len(set(names)) != len(names):
        raise ChunkRejected(
            f"joint names {names} do not match the controller's {list(joint_names)}"
        )
    stamp = to_seconds(msg.header.stamp)
    if stamp == 0:
        raise ChunkRejected("header.stamp is zero; a chunk must carry its observation's time")
    if len(msg.points) < 1:
        raise ChunkRejected("no points")
    times = np.array([to_seconds(p.time_from_start) for p in msg.points])
    if len(times) > 1:
        spacing = np.diff(times)
        if (spacing <= 0).any():
            raise ChunkRejected("time_from_start is not strictly increasing")
        if np.ptp(spacing) > _SPACING_TOLERANCE:
            raise ChunkRejected(f"points are not evenly spaced (spacings {spacing.round(4)})")
        dt = float(spacing.mean())
        if dt > limits.max_point_spacing + _SPACING_TOLERANCE:
            raise ChunkRejected(
                f"points {dt:.4g} s apart, over max_point_spacing {limits.max_point_spacing} s"
            )
    else:
        # A single action: any positive spacing places it the same way, and it is held for
        # one spacing, so no longer than the bound allows.
        dt = min(1.0, limits.max_point_spacing)
    start = stamp + float(times[0])
    if now is not None and start - now > limits.max_lead:
        raise ChunkRejected(
            f"starts {start - now:.4g} s ahead of the clock, over max_chunk_lead "
            f"{limits.max_lead} s"
        )
    if len(times) * dt > limits.max_duration + _SPACING_TOLERANCE:
        raise ChunkRejected(
            f"covers {len(times) * dt:.4g} s, over max_chunk_duration {limits.max_duration} s"
        )
    if any(len(p.positions) != len(names) for p in msg.points):
        raise ChunkRejected("a point's position count differs from the joint count")
    order = [names.index(n) for n in joint_names]
    actions = np.array([p.positions for p in msg.points], dtype=np.float64)[:, order]
    if not np.isfinite(actions).all():
        raise ChunkRejected("non-finite action")
    return TimedChunk(start, dt, actions)


def _counts(raw: bytes) -> tuple[int, int | None]:
    """(joint names, points) of a serialized JointTrajectory, read from its CDR bytes without
    building the message; points is None when the names are too many to walk past cheaply.
    Raises struct.error (or ValueError) on bytes that are not such a message."""
    endian = {0: ">", 1: "<"}[raw[1]]  # the encapsulation header: CDR big or little endian
    body, at = memoryview(raw)[4:], 0

    def u32() -> int:
        nonlocal at
        at = (at + 3) & ~3  # CDR aligns each 4-byte value
        (value,) = struct.unpack_from(endian + "I", body, at)
        at += 4
        return value

    def skip_string() -> None:
        nonlocal at
        length = u32()  # with its NUL; read first: `at += u32()` would add to the old `at`
        at += length

    u32(), u32()  # header.stamp: sec, nanosec
    skip_string()  # header.frame_id
    names = u32()
    if names > _MAX_NAMES:
        return names, None
    for _ in range(names):
        skip_string()
    return names, u32()


class ChunkReader:
    """Chunks from serialized messages (a `raw=True` subscription), size-checked first.

    rclpy turns a message into Python objects point by point, holding the GIL throughout
    (6 ms for 1000 points, 1 s for 100,000: the control loop's thread waits), so bounds in
    `chunk_from_msg` alone come too late. Two are checked before that work: the byte count
    (no message within the limits serializes larger than `max_bytes`: `limits.max_points`
    points carrying positions, velocities, accelerations and efforts for every joint, plus
    `_HEADER_SLACK` for the frame id) and the joint-name and point counts, read from the
    bytes themselves.
    """

    def __init__(self, joint_names: Sequence[str], limits: ChunkLimits = DEFAULT_LIMITS) -> None:
        self.joint_names = list(joint_names)
        self.limits = limits
        full = [0.0] * len(self.joint_names)
        point = JointTrajectoryPoint(
            positions=full, velocities=full, accelerations=full, effort=full
        )
        largest = JointTrajectory(joint_names=self.joint_names)
        largest.points = [point] * limits.max_points
        self.max_bytes = len(serialize_message(largest)) + _HEADER_SLACK

    def read(self, raw: bytes, now: float | None) -> TimedChunk:
        """The chunk in `raw`; raises ChunkRejected naming the first problem."""
        if len(raw) > self.max_bytes:
            raise ChunkRejected(
                f"message of {len(raw)} bytes, over the {self.max_bytes} that max_chunk_points "
                f"{self.limits.max_points} allows"
            )
        try:
            names, points = _counts(raw)
        except (struct.error, KeyError, IndexError) as exc:
            raise ChunkRejected(f"not a JointTrajectory: {exc!r}") from exc
        if names != len(self.joint_names):
            raise ChunkRejected(
                f"joint names: {names} given, the controller has {len(self.joint_names)}"
            )
        if points is not None and points > self.limits.max_points:
            raise ChunkRejected(f"{points} points, over max_chunk_points {self.limits.max_points}")
        try:
            msg = deserialize_message(raw, JointTrajectory)
        except Exception as exc:  # noqa: BLE001 - whatever the type support raises
            raise ChunkRejected(f"not a JointTrajectory: {exc}") from exc
        return chunk_from_msg(msg, self.joint_names, now, self.limits)
