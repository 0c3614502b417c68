"""`bench fuzz`'s chunks: valid ones that drive the arm everywhere, and ones that must not.

Every kind is a `Kind`: what control_node should do with it (`expect`), how fast the injector
sends it, and the method of `ChunkMaker` that builds one. Valid chunks aim at targets across
each joint's whole URDF range and beyond it, at poses that put links into the table, and jump
far in one step, over random horizons (1-64) and spacings (0.01-0.5 s); the filter, not the
chunk, has to keep the arm safe. Adversarial ones break one rule of the wire format each
(`nodes.chunk_msgs` names the rules) or all of them at random (`garbage`); some are legal but
hostile: finite values of 1e300, chunks wholly in the past, 1 kHz floods. `plan` orders them in
segments of one kind, so the control node's chunk counters can be read per kind between them.
Nothing here reads a clock or touches ROS beyond building messages: the injector does both.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from builtin_interfaces.msg import Duration, Time
from rclpy.serialization import serialize_message
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.common import to_stamp
from robot_policy.robots import RobotDescription
from robot_policy.runtime.chunks import ChunkLimits, TimedChunk

Message = JointTrajectory | bytes  # bytes: already serialized (the 100,000-point chunk)
Expect = Literal["accept", "stale", "reject", "any"]
HUGE_POINTS = 100_000
FLOOD_POINTS = 1000  # chunks in one flood: a second at 1 kHz
BEYOND = 0.2  # targets reach this fraction of a joint's range past each URDF limit
MAX_HORIZON = 64
SEGMENT = {"valid": 50, "adversarial": 40}  # most chunks of one kind sent back to back
TELEOP_SHARE = 0.3  # chunks sent on the operator's topic instead of the policy's
OUT_OF_ORDER = 0.2  # valid chunks stamped before the last one: a late worker's, ignored
AHEAD = 0.05  # valid chunks stamped ahead of the clock, within max_chunk_lead


@dataclass(frozen=True)
class Kind:
    """One way to build a chunk. `expect`: accept (valid: accepted, or ignored as out of
    order, or overridden by teleop), stale (valid but wholly past: ignored), reject (refused
    with a reason), any (garbage: refused unless it happens to be valid)."""

    name: str
    expect: Expect
    interval: float  # s between sends
    make: Callable[[ChunkMaker, float], Message]
    e_stop: bool = False  # the e-stop is engaged for the segment, then /safety/reset


@dataclass(frozen=True)
class Segment:
    """Chunks of one kind sent back to back, each on its own topic (policy or teleop)."""

    kind: Kind
    topics: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.topics)


class ChunkMaker:
    """Builds chunks for the robot's `names` (action order: arm joints, then the gripper).

    `current()` is the newest applied command (or None); smooth chunks start from it.
    `table_poses` are arm poses whose links lie below the table (see `fuzz_checks`).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        robot: RobotDescription,
        limits: ChunkLimits,
        current: Callable[[], np.ndarray | None],
        table_poses: np.ndarray,
    ) -> None:
        self.rng = rng
        self.names = robot.command_names
        self.limits = limits
        self.current = current
        self.table_poses = table_poses
        self.last_stamp = -math.inf
        self.lower = np.array([*robot.arm_lower, 0.0])
        self.upper = np.array([*robot.arm_upper, robot.gripper_max_width])

    # --- valid -------------------------------------------------------------------------------

    def target(self) -> np.ndarray:
        """A pose uniformly spread over each joint's URDF range widened by BEYOND each side."""
        span = self.upper - self.lower
        return self.rng.uniform(self.lower - BEYOND * span, self.upper + BEYOND * span)

    def timing(self, least: int = 1) -> tuple[float, int]:
        """(dt, horizon): dt log-uniform in [0.01, max spacing], horizon `least`-64 within
        max_chunk_duration (which allows at least 10 points at the widest spacing)."""
        dt = math.exp(self.rng.uniform(math.log(0.01), math.log(self.limits.max_point_spacing)))
        most = min(MAX_HORIZON, self.limits.max_points, max(1, int(self.limits.max_duration / dt)))
        return dt, int(self.rng.integers(least, max(least, most) + 1))

    def stamp(self, now: float, span: float) -> float:
        """Mostly a policy's latency in the past (up to 0.3 s, and less than half the chunk's
        `span`, so that it still covers now), sometimes ahead within max_chunk_lead; after the
        last stamp (by 1 us at least), as a policy's observations are, except OUT_OF_ORDER."""
        if self.rng.random() < AHEAD:
            stamp = now + self.rng.uniform(0.0, 0.8 * self.limits.max_lead)
        else:
            stamp = now - self.rng.uniform(0.0, min(0.3, span / 2))
        if self.rng.random() < OUT_OF_ORDER:
            return stamp
        self.last_stamp = max(stamp, self.last_stamp + 1e-6)
        return self.last_stamp

    def message(self, now: float, dt: float, actions: np.ndarray) -> JointTrajectory:
        """The chunk on the wire, stamped by `stamp`, its joints in a random order half the
        time (a valid message names its joints; it need not list them in the controller's)."""
        order = np.arange(len(self.names))
        if self.rng.random() < 0.5:
            self.rng.shuffle(order)
        chunk = TimedChunk(self.stamp(now, len(actions) * dt), dt, actions[:, order])
        return chunk_to_msg(chunk, [self.names[i] for i in order])

    def ramp(self, now: float, goal: np.ndarray, least: int = 1) -> JointTrajectory:
        dt, h = self.timing(least)
        start = self.current()
        start = goal if start is None else start
        actions = start + (goal - start) * (np.arange(1, h + 1) / h)[:, None]
        return self.message(now, dt, actions)

    def reach(self, now: float) -> JointTrajectory:
        """A straight line from the applied command to a random target."""
        return self.ramp(now, self.target())

    def jump(self, now: float) -> JointTrajectory:
        """Every point at one far target: a step of up to the whole range."""
        dt, h = self.timing()
        return self.message(now, dt, np.tile(self.target(), (h, 1)))

    def chatter(self, now: float) -> JointTrajectory:
        """Every point an independent random target: far jumps back and forth."""
        dt, h = self.timing()
        return self.message(now, dt, np.stack([self.target() for _ in range(h)]))

    def table(self, now: float) -> JointTrajectory:
        """Toward a pose that puts links into the table."""
        goal = self.target()
        goal[: self.table_poses.shape[1]] = self.table_poses[
            self.rng.integers(len(self.table_poses))
        ]
        return self.ramp(now, goal)

    def extreme(self, now: float) -> JointTrajectory:
        """Finite but absurd targets, up to ±1e300."""
        dt, h = self.timing()
        magnitude = 10.0 ** self.rng.uniform(3, 300, (h, len(self.names)))
        return self.message(now, dt, magnitude * self.rng.choice([-1.0, 1.0], (h, 1)))

    def stale(self, now: float) -> JointTrajectory:
        """A valid chunk that ended long ago: 1 ns or 1 s after the epoch, or 10 s to 1e6 s ago."""
        msg = self.reach(now)
        stamps = (1e-9, 1.0, now - self.rng.uniform(10.0, 1e6))
        msg.header.stamp = to_stamp(stamps[int(self.rng.integers(len(stamps)))])
        return msg

    # --- one rule broken ---------------------------------------------------------------------

    def base(self, now: float) -> JointTrajectory:
        """A valid chunk of at least 3 points to break."""
        return self.ramp(now, self.target(), least=3)

    def pick(self, msg: JointTrajectory) -> tuple[JointTrajectoryPoint, int]:
        point = msg.points[int(self.rng.integers(len(msg.points)))]
        return point, int(self.rng.integers(len(msg.joint_names)))

    def nan(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        point, j = self.pick(msg)
        point.positions[j] = math.nan
        return msg

    def inf(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        point, j = self.pick(msg)
        point.positions[j] = float(self.rng.choice([math.inf, -math.inf]))
        return msg

    def wrong_name(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        msg.joint_names[self.pick(msg)[1]] = "not_a_joint"
        return msg

    def missing_name(self, now: float) -> JointTrajectory:
        """One joint left out, names and positions alike."""
        msg = self.base(now)
        j = self.pick(msg)[1]
        msg.joint_names = [n for i, n in enumerate(msg.joint_names) if i != j]
        for point in msg.points:
            point.positions = [x for i, x in enumerate(point.positions) if i != j]
        return msg

    def duplicate_name(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        j = self.pick(msg)[1]
        msg.joint_names[j] = msg.joint_names[(j + 1) % len(msg.joint_names)]
        return msg

    def ragged(self, now: float) -> JointTrajectory:
        """One point with a position too many or too few."""
        msg = self.base(now)
        point = self.pick(msg)[0]
        values = list(point.positions)
        point.positions = [*values, 0.0] if self.rng.random() < 0.5 else values[:-1]
        return msg

    def non_increasing(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        k = int(self.rng.integers(1, len(msg.points)))
        earlier = msg.points[k - int(self.rng.integers(1, k + 1))].time_from_start
        msg.points[k].time_from_start = Duration(sec=earlier.sec, nanosec=earlier.nanosec)
        return msg

    def uneven(self, now: float) -> JointTrajectory:
        """An inner point moved by 30% of the spacing: still increasing, no longer even."""
        msg = self.base(now)
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        k = int(self.rng.integers(1, len(times) - 1))
        moved = times[k] + 0.3 * (times[1] - times[0])
        msg.points[k].time_from_start = Duration(sec=int(moved), nanosec=int(moved % 1 * 1e9))
        return msg

    def zero_stamp(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        msg.header.stamp = Time()
        return msg

    def future_stamp(self, now: float) -> JointTrajectory:
        """Stamped 1e6 s ahead, or just past max_chunk_lead."""
        msg = self.base(now)
        ahead = (
            1e6 if self.rng.random() < 0.5 else self.rng.uniform(1.2, 100) * self.limits.max_lead
        )
        msg.header.stamp = to_stamp(now + ahead)
        return msg

    def future_offset(self, now: float) -> JointTrajectory:
        """Stamped now, but every time_from_start 1e6 s later."""
        msg = self.base(now)
        for point in msg.points:
            point.time_from_start.sec += 1_000_000
        return msg

    def wide_spacing(self, now: float) -> JointTrajectory:
        dt = self.rng.uniform(1.2, 6.0) * self.limits.max_point_spacing
        h = int(self.rng.integers(2, 4))
        return self.message(now, dt, np.tile(self.target(), (h, 1)))

    def long_duration(self, now: float) -> JointTrajectory:
        dt = self.rng.uniform(0.05, self.limits.max_point_spacing)
        h = min(
            int(self.limits.max_duration / dt) + int(self.rng.integers(2, 20)),
            self.limits.max_points,
        )
        return self.message(now, dt, np.tile(self.target(), (h, 1)))

    def too_many_points(self, now: float) -> JointTrajectory:
        """Up to three times max_chunk_points, 1 ms apart (short enough in time)."""
        h = int(self.rng.integers(self.limits.max_points + 1, 3 * self.limits.max_points + 1))
        return self.message(now, 0.001, np.tile(self.target(), (h, 1)))

    def huge(self, now: float) -> bytes:
        return self._huge

    @cached_property
    def _huge(self) -> bytes:
        """100,000 points, serialized once (rclpy takes seconds to convert them)."""
        msg = JointTrajectory(joint_names=self.names)
        msg.header.stamp = to_stamp(1.0)
        msg.points = [JointTrajectoryPoint(positions=[0.0] * len(self.names))] * HUGE_POINTS
        return serialize_message(msg)

    def empty(self, now: float) -> JointTrajectory:
        msg = self.base(now)
        msg.points = []
        return msg

    def garbage(self, now: float) -> JointTrajectory:
        """Random values in every field; half the time with the right names, so the other
        checks see the garbage too."""
        rng = self.rng
        names = (
            list(self.names)
            if rng.random() < 0.5
            else [_text(rng, 12) for _ in range(rng.integers(0, 12))]
        )
        rng.shuffle(names)
        msg = JointTrajectory(joint_names=names)
        msg.header.frame_id = _text(rng, 1000)
        msg.header.stamp = Time(
            sec=int(rng.integers(-(2**31), 2**31)), nanosec=int(rng.integers(0, 2**32))
        )
        for _ in range(rng.integers(0, 20)):
            msg.points.append(
                JointTrajectoryPoint(
                    positions=_floats(
                        rng, len(names) if rng.random() < 0.7 else rng.integers(0, 12)
                    ),
                    velocities=_floats(rng, rng.integers(0, 12)),
                    accelerations=_floats(rng, rng.integers(0, 12)),
                    effort=_floats(rng, rng.integers(0, 12)),
                    time_from_start=Duration(
                        sec=int(rng.integers(-(2**31), 2**31)), nanosec=int(rng.integers(0, 2**32))
                    ),
                )
            )
        return msg


def _text(rng: np.random.Generator, longest: int) -> str:
    return "".join(rng.choice(list(string.printable), int(rng.integers(0, longest + 1))))


_NASTY = (math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7e308, -1.7e308)


def _floats(rng: np.random.Generator, count: int) -> list[float]:
    """Ordinary numbers of any magnitude, with NaN, infinities, denormals and extremes mixed in."""
    out = rng.normal(size=int(count)) * 10.0 ** rng.uniform(-3, 3, int(count))
    nasty = rng.random(int(count)) < 0.3
    out[nasty] = rng.choice(_NASTY, int(nasty.sum()))
    return out.tolist()


VALID_INTERVAL = 0.02  # s: valid chunks at 50 Hz, five times a policy's usual rate
ADVERSARIAL_INTERVAL = 0.005
# Share of the valid half each valid kind gets; the adversarial half is shared out evenly.
VALID_SHARES = {"reach": 0.4, "jump": 0.2, "chatter": 0.2, "table": 0.2}
REFUSED = tuple(
    "nan inf wrong_name missing_name duplicate_name ragged non_increasing uneven zero_stamp "
    "future_stamp future_offset wide_spacing long_duration too_many_points empty".split()
)
ADVERSARIAL: dict[str, Expect] = {
    "extreme": "accept",
    "stale": "stale",
    "garbage": "any",
    **dict.fromkeys(REFUSED, "reject"),
}
KINDS: dict[str, Kind] = {
    **{n: Kind(n, "accept", VALID_INTERVAL, getattr(ChunkMaker, n)) for n in VALID_SHARES},
    **{n: Kind(n, e, ADVERSARIAL_INTERVAL, getattr(ChunkMaker, n)) for n, e in ADVERSARIAL.items()},
    "flood": Kind("flood", "accept", 0.001, ChunkMaker.reach),
    "huge": Kind("huge", "reject", ADVERSARIAL_INTERVAL, ChunkMaker.huge),
    "e_stop": Kind("e_stop", "accept", VALID_INTERVAL, ChunkMaker.reach, e_stop=True),
}


def plan(total: int, rng: np.random.Generator, topics: Sequence[str]) -> list[Segment]:
    """`total` chunks as shuffled segments of one kind each, every kind at least once.

    Floods (1000 chunks, fewer for small budgets), 100,000-point chunks and e-stops come
    first out of the budget (two floods and two huge chunks from 10,000 chunks on, one e-stop
    per 1000 chunks); the rest is half valid kinds, half adversarial, by the shares above.
    `topics`: (policy, teleop); TELEOP_SHARE of the chunks go to the second.
    """
    if total < len(KINDS) + 2 * SEGMENT["valid"]:
        raise ValueError(f"need at least {len(KINDS) + 2 * SEGMENT['valid']} chunks, got {total}")
    floods = 2 if total >= 10_000 else 1
    flood_size = min(FLOOD_POINTS, total // 10)
    e_stops = max(1, total // 1000)
    counts: list[tuple[str, int]] = [("flood", flood_size)] * floods + [("huge", 1)] * floods
    counts += [("e_stop", SEGMENT["valid"] // 2)] * e_stops
    rest = total - sum(n for _, n in counts)
    valid = rest // 2
    counts += _split(VALID_SHARES, valid, "valid")
    counts += _split(dict.fromkeys(ADVERSARIAL, 1.0), rest - valid, "adversarial")
    order = rng.permutation(len(counts))
    return [
        Segment(KINDS[name], tuple(topics[int(t)] for t in rng.random(n) < TELEOP_SHARE))
        for name, n in (counts[i] for i in order)
    ]


def _split(shares: dict[str, float], budget: int, group: str) -> list[tuple[str, int]]:
    """`budget` chunks shared out by `shares` (each kind >= 1, the remainder to the first),
    cut into segments of at most SEGMENT[group]."""
    total = sum(shares.values())
    counts = {n: max(1, int(budget * s / total)) for n, s in shares.items()}
    first = next(iter(counts))
    counts[first] = max(1, counts[first] + budget - sum(counts.values()))
    size = SEGMENT[group]
    return [(n, min(size, c - k)) for n, c in counts.items() for k in range(0, c, size)]
