"""Action chunks on the wire: trajectory_msgs/JointTrajectory <-> `TimedChunk`.

A chunk is a JointTrajectory whose header.stamp is the time of the observation it was computed
from and whose points are the actions for stamp + k·dt (time_from_start = k·dt). That keeps it a
standard message any ROS tool can plot, while the control node can still place it in time.
Everything a malformed chunk can get wrong is checked here, so the control loop only ever sees
valid chunks; the reason for a rejection goes to the diagnostics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy.nodes.common import to_seconds, to_stamp
from robot_policy.runtime.chunks import TimedChunk

# Points must be evenly spaced to this tolerance (s): a chunk is a sampled sequence, not a spline.
_SPACING_TOLERANCE = 1e-4


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


def chunk_from_msg(msg: JointTrajectory, joint_names: Sequence[str]) -> TimedChunk:
    """The chunk in `joint_names` order; raises ChunkRejected naming the first problem."""
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
    else:
        dt = 1.0  # a single action: any positive spacing places it the same way
    if any(len(p.positions) != len(names) for p in msg.points):
        raise ChunkRejected("a point's position count differs from the joint count")
    order = [names.index(n) for n in joint_names]
    actions = np.array([p.positions for p in msg.points], dtype=np.float64)[:, order]
    if not np.isfinite(actions).all():
        raise ChunkRejected("non-finite action")
    return TimedChunk(stamp + float(times[0]), dt, actions)
