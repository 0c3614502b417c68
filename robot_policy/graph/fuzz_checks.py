"""`bench fuzz`'s observer: what the arm was told and what it did, judged without the filter.

Three checks, each from what crossed DDS: (1) every command control_node applied
(/control/command) against the filter's own limits: position inside [lower, upper], speed,
and acceleration between consecutive commands over the loop period; (2) the arm's measured
joint speeds (/joint_states) against the URDF's, the hardware's, limits; (3) the lowest point
of every arm link against the table plane z = 0, from PyBullet's collision meshes in a client
of our own: the filter's keep-out uses spheres fitted to those meshes, so this is a second
model, not the filter's arithmetic repeated. Each figure counts its violations three ways: all
of them, those outside the machine stalls the `StallWitness` saw (a stalled machine runs no
controller; what happens then says nothing about the software), and by the chunk kind being
sent when they happened (a `Timeline`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pybullet as p

from robot_policy.robots import RobotDescription
from robot_policy.runtime.stall_witness import Stall, overlaps
from robot_policy.safety.limits import SafetyLimits

# Relative slack for float round-off: a command exactly at a limit is within it.
TOLERANCE = 1e-6
# A command k whose step from k-1 is not its own velocity x period follows a lost message
# (or is the first): no acceleration is computed across it. The step is rebuilt from floats
# that differ by ~1e-16 relative, so 1e-9 rad tells a gap from round-off.
CONTINUITY = 1e-9
SPEED_BOUND = 1.05  # measured speed / URDF limit the campaign must stay under
# s either side of a witnessed stall that still counts as in it: the loop's late tick and the
# sim's catch-up after a stall land within a few periods of its end.
STALL_SLACK = 0.05
TABLE_HALF_DEPTH = 0.5  # m: the table is a slab this deep under z = 0, so depth is measured
REACH = 10.0  # m: getClosestPoints reports every link within this of the table


@dataclass(frozen=True)
class Samples:
    """Messages of one topic: stamps (monotonic s) and per-joint positions and velocities."""

    stamps: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[tuple[float, Sequence[float], Sequence[float]]]) -> Samples:
        if not rows:
            return cls(np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0)))
        stamps, positions, velocities = zip(*rows, strict=True)
        return cls(np.array(stamps), np.array(positions), np.array(velocities))


@dataclass(frozen=True)
class Timeline:
    """What a violation's time is compared with: the machine stalls the witness saw, and the
    campaign's segments as (start, end, kind), all monotonic."""

    stalls: list[Stall]
    windows: list[tuple[float, float, str]]

    def outside(self, stamps: Iterable[float]) -> int:
        """How many of `stamps` lie outside every stall (widened by STALL_SLACK)."""
        return sum(not overlaps(self.stalls, t - STALL_SLACK, t + STALL_SLACK) for t in stamps)

    def by_kind(self, stamps: Iterable[float]) -> dict[str, int]:
        """How many of `stamps` fall in a segment of each kind (sent, or awaiting its status)."""
        counts: dict[str, int] = {}
        for t in stamps:
            kind = next((k for start, end, k in self.windows if start <= t <= end), None)
            if kind is not None:
                counts[kind] = counts.get(kind, 0) + 1
        return counts


def command_figures(
    commands: Samples,
    limits: SafetyLimits,
    names: Sequence[str],
    period: float,
    when: Timeline,
) -> dict[str, object]:
    """Commands beyond the filter's limits (position, velocity, acceleration), the worst ratio
    of each to its limit, and the jerk ratio (the filter holds jerk only where braking allows:
    reported, not counted)."""
    lim = limits.arrays(names)
    q, v = commands.positions, commands.velocities
    if len(q) < 2:
        raise ValueError(f"only {len(q)} commands observed")
    span = lim["upper"] - lim["lower"]
    excess = np.maximum(q - lim["upper"], lim["lower"] - q)  # > 0: outside; rad or m
    step = np.abs(q[1:] - q[:-1] - v[1:] * period).max(axis=1)
    linked = np.concatenate([[False], step <= CONTINUITY * np.maximum(1.0, np.abs(q[1:]).max(1))])
    acc = np.full_like(v, np.nan)
    acc[1:] = (v[1:] - v[:-1]) / period
    acc[~linked] = np.nan
    jerk = np.full_like(v, np.nan)
    jerk[1:] = (acc[1:] - acc[:-1]) / period
    velocity_ratio = np.abs(v) / lim["velocity"]
    acceleration_ratio = np.abs(acc) / lim["acceleration"]
    bad = (
        (excess > TOLERANCE * np.maximum(span, 1.0)).any(axis=1)
        | (velocity_ratio > 1 + TOLERANCE).any(axis=1)
        | (acceleration_ratio > 1 + TOLERANCE).any(axis=1)  # NaN (unchecked) compares False
    )
    return {
        "commands": len(q),
        "commands_beyond_limits": int(bad.sum()),
        "commands_beyond_limits_outside_stalls": when.outside(commands.stamps[bad]),
        "commands_beyond_limits_by_kind": when.by_kind(commands.stamps[bad]),
        "position_excess_max": float(excess.max()),  # < 0: the closest any joint came
        "velocity_ratio_max": float(velocity_ratio.max()),
        "acceleration_ratio_max": float(np.nanmax(acceleration_ratio)),
        "jerk_ratio_max": float(np.nanmax(np.abs(jerk) / lim["jerk"])),
        "commands_after_a_gap": int((~linked).sum() - 1),  # lost in DDS: acceleration unchecked
    }


def speed_figures(
    states: Samples, joints: Sequence[str], robot: RobotDescription, when: Timeline
) -> dict[str, object]:
    """Measured joint speed over the URDF velocity limit: max and p99.9, overall and per joint,
    and the samples over SPEED_BOUND."""
    hardware = {j.name: j.max_velocity for j in (*robot.arm, *robot.fingers)}
    ratio = np.abs(states.velocities) / np.array([hardware[n] for n in joints])
    over = (ratio > SPEED_BOUND).any(axis=1)
    return {
        "measured_speed_ratio_max": float(ratio.max()),
        "measured_speed_ratio_p99_9": float(np.percentile(ratio, 99.9)),
        "measured_speed_ratio_max_per_joint": dict(
            zip(joints, ratio.max(0).round(4).tolist(), strict=True)
        ),
        "measured_speed_ratio_p99_9_per_joint": dict(
            zip(joints, np.percentile(ratio, 99.9, axis=0).round(4).tolist(), strict=True)
        ),
        "measured_states": len(ratio),
        "measured_over_speed_bound": int(over.sum()),
        "measured_over_speed_bound_outside_stalls": when.outside(states.stamps[over]),
        "measured_over_speed_bound_by_kind": when.by_kind(states.stamps[over]),
    }


class TableClearance:
    """The signed distance of each arm link to the table plane, from the URDF's collision
    meshes: the robot's base at the origin on the table top, as sim/scene.py places it, and
    the table a slab under z = 0 wide enough to cover everything the arm reaches."""

    def __init__(self, robot: RobotDescription) -> None:
        self.client = p.connect(p.DIRECT)
        cid = self.client
        self.body = p.loadURDF(
            str(robot.urdf_path),
            useFixedBase=True,
            flags=p.URDF_IGNORE_VISUAL_SHAPES,
            physicsClientId=cid,
        )
        slab = p.createCollisionShape(
            p.GEOM_BOX, halfExtents=(REACH, REACH, TABLE_HALF_DEPTH), physicsClientId=cid
        )
        self.table = p.createMultiBody(
            0.0, slab, -1, (0, 0, -TABLE_HALF_DEPTH), physicsClientId=cid
        )
        info = [
            p.getJointInfo(self.body, i, physicsClientId=cid)
            for i in range(p.getNumJoints(self.body, physicsClientId=cid))
        ]
        self.joint_index = {row[1].decode(): row[0] for row in info}
        # Links with a collision shape; the base (panda_link0, index -1) stands on the table.
        self.links = [
            (row[0], row[12].decode())
            for row in info
            if p.getCollisionShapeData(self.body, row[0], physicsClientId=cid)
        ]

    def lowest(self, joints: Sequence[str], positions: Sequence[float]) -> tuple[float, str]:
        """(signed distance in m, link) of the link nearest to or deepest in the table."""
        cid = self.client
        for name, q in zip(joints, positions, strict=True):
            p.resetJointState(self.body, self.joint_index[name], float(q), physicsClientId=cid)
        best, where = math.inf, ""
        for link, name in self.links:
            for point in p.getClosestPoints(
                self.body, self.table, REACH, linkIndexA=link, physicsClientId=cid
            ):
                if point[8] < best:
                    best, where = point[8], name
        return best, where

    def poses_below(
        self, rng: np.random.Generator, robot: RobotDescription, count: int, depth: float = 0.05
    ) -> np.ndarray:
        """`count` arm poses, uniform over the URDF ranges, with some link `depth` m or more
        into the table: targets the filter has to refuse to reach."""
        names = robot.arm_joint_names
        found: list[np.ndarray] = []
        for _ in range(1000 * count):
            pose = rng.uniform(robot.arm_lower, robot.arm_upper)
            if self.lowest(names, pose)[0] < -depth:
                found.append(pose)
                if len(found) == count:
                    return np.stack(found)
        raise ValueError(f"{robot.name}: no pose puts a link {depth} m into the table")

    def figures(self, states: Samples, joints: Sequence[str], when: Timeline) -> dict[str, object]:
        """The lowest any link came in every measured state (~0.1 ms each), and the states
        with a link below the plane."""
        clearance, where = [], []
        for positions in states.positions:
            d, link = self.lowest(joints, positions)
            clearance.append(d)
            where.append(link)
        clearance_ = np.array(clearance)
        k = int(np.argmin(clearance_))
        below = clearance_ < 0
        return {
            "table_clearance_min_m": float(clearance_[k]),
            "table_clearance_min_link": where[k],
            "table_states_checked": len(clearance_),
            "states_below_table": int(below.sum()),
            "states_below_table_outside_stalls": when.outside(states.stamps[below]),
            "states_below_table_by_kind": when.by_kind(states.stamps[below]),
        }

    def close(self) -> None:
        p.disconnect(self.client)

    def __enter__(self) -> TableClearance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
