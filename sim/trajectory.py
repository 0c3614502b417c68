"""What a ros2_control JointTrajectoryController accepts, and how it plays a trajectory back.

The simulated arm must reject exactly what a real JTC rejects, or a graph that works in sim fails
on hardware with a trajectory the sim let through. Rules (ros2_controllers' JTC):
  - joint names: non-empty, no duplicates, no unknown joints, all of the controller's joints
    (partial goals are off by default);
  - points: non-empty; each with one position per joint, and velocities either empty or one per
    joint; `time_from_start` strictly increasing;
  - a non-zero header stamp is an absolute start time; if the trajectory ended before it was
    received it is rejected; a zero stamp means "start on receipt";
  - a non-zero velocity at the last point is rejected unless
    `allow_nonzero_velocity_at_trajectory_end` is set.
We additionally reject non-finite values (the JTC would pass them on to the hardware).
Playback: before the first point the controller moves from the setpoint it held at the start;
between points it interpolates linearly (positions only) or with cubic Hermite splines (with
velocities); after the last point it holds it. A new trajectory replaces the old one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class TrajectoryRejected(ValueError):
    """The trajectory breaks a JTC rule; the message says which (as the JTC's log would)."""


@dataclass(frozen=True)
class Trajectory:
    """A validated trajectory in the controller's joint order, timed from `start` (seconds)."""

    start: float
    times: np.ndarray  # (N,) time_from_start, strictly increasing
    positions: np.ndarray  # (N, J)
    velocities: np.ndarray | None  # (N, J) or None (linear interpolation)
    origin: np.ndarray  # (J,) the setpoint when the trajectory started
    origin_velocity: np.ndarray  # (J,) and its velocity (continuity across replacements)

    @property
    def end(self) -> float:
        return self.start + float(self.times[-1])

    def sample(self, t: float) -> np.ndarray:
        """Setpoint at absolute time `t`."""
        u = t - self.start
        times, pos = self.times, self.positions
        if u >= times[-1]:
            return pos[-1].copy()
        k = int(np.searchsorted(times, u, side="right"))  # first point strictly after u
        if k == 0:
            t0, p0, t1, p1 = 0.0, self.origin, times[0], pos[0]
            v0 = self.origin_velocity
            v1 = self.velocities[0] if self.velocities is not None else None
        else:
            t0, p0, t1, p1 = times[k - 1], pos[k - 1], times[k], pos[k]
            v0 = self.velocities[k - 1] if self.velocities is not None else None
            v1 = self.velocities[k] if self.velocities is not None else None
        span = t1 - t0
        if span <= 0:
            return p1.copy()
        s = min(max((u - t0) / span, 0.0), 1.0)
        if v0 is None or v1 is None:
            return p0 + s * (p1 - p0)
        # Cubic Hermite basis on [0, 1]; velocities scale with the segment's duration.
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return h00 * p0 + h10 * span * v0 + h01 * p1 + h11 * span * v1


def validate(
    controller_joints: Sequence[str],
    joint_names: Sequence[str],
    stamp: float,
    times: Sequence[float],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]],
    *,
    now: float,
    origin: np.ndarray,
    origin_velocity: np.ndarray | None = None,
    allow_nonzero_end_velocity: bool = False,
) -> Trajectory:
    """Check a received trajectory (fields as in trajectory_msgs/JointTrajectory) and reorder it
    into `controller_joints`; raise TrajectoryRejected with the reason otherwise.

    `stamp` is header.stamp in seconds (0 = start now), `velocities[k]` may be empty per point.
    `origin`/`origin_velocity`: the setpoint and its velocity at receipt, where playback starts
    (like the JTC, which starts from its current state so a replacement does not jerk).
    """
    names = list(joint_names)
    if not names:
        raise TrajectoryRejected("empty joint names")
    if len(set(names)) != len(names):
        raise TrajectoryRejected(f"duplicate joint names in {names}")
    unknown = [n for n in names if n not in controller_joints]
    if unknown:
        raise TrajectoryRejected(
            f"unknown joints {unknown}; controller has {list(controller_joints)}"
        )
    missing = [n for n in controller_joints if n not in names]
    if missing:
        raise TrajectoryRejected(f"partial goal: joints {missing} missing")
    if not len(times):
        raise TrajectoryRejected("empty trajectory (no points)")
    t = np.asarray(times, dtype=np.float64)
    if not np.isfinite(t).all() or (t < 0).any():
        raise TrajectoryRejected("time_from_start must be finite and >= 0")
    if (np.diff(t) <= 0).any():
        raise TrajectoryRejected("time_from_start of the points is not strictly increasing")
    for k, p in enumerate(positions):
        if len(p) != len(names):
            raise TrajectoryRejected(f"point {k} has {len(p)} positions for {len(names)} joints")
    with_velocity = [len(v) > 0 for v in velocities]
    for k, v in enumerate(velocities):
        if v and len(v) != len(names):
            raise TrajectoryRejected(f"point {k} has {len(v)} velocities for {len(names)} joints")
    if any(with_velocity) and not all(with_velocity):
        raise TrajectoryRejected("velocities given for some points but not all")
    order = [names.index(n) for n in controller_joints]
    pos = np.asarray(positions, dtype=np.float64)[:, order]
    vel = np.asarray(velocities, dtype=np.float64)[:, order] if all(with_velocity) else None
    if not np.isfinite(pos).all() or (vel is not None and not np.isfinite(vel).all()):
        raise TrajectoryRejected("non-finite position or velocity")
    if vel is not None and not allow_nonzero_end_velocity and np.any(vel[-1] != 0):
        raise TrajectoryRejected(
            "non-zero velocity at the trajectory's end "
            "(allow_nonzero_velocity_at_trajectory_end is false)"
        )
    if not math.isfinite(stamp):
        raise TrajectoryRejected("non-finite header stamp")
    start = now if stamp == 0 else stamp
    if stamp != 0 and start + float(t[-1]) < now:
        raise TrajectoryRejected(
            f"trajectory ends in the past ({now - start - float(t[-1]):.3f} s before receipt)"
        )
    origin = np.asarray(origin, dtype=np.float64).copy()
    velocity0 = np.zeros_like(origin) if origin_velocity is None else np.asarray(origin_velocity)
    return Trajectory(start, t, pos, vel, origin, velocity0.astype(np.float64))
