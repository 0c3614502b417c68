"""`bench fuzz` (issue 17): fuzzed and adversarial chunks against control_node.

Without ROS, every chunk kind is built as its expectation says: valid kinds parse, refused kinds
are refused for their own reason, so the campaign's per-kind counts mean what they say. Over
real rclpy/DDS, a small campaign (every kind at least once) against sim_node + control_node
breaks no limit of the filter, keeps every link off the table, and has each refused kind
refused with its reason; the campaign itself fails (GraphFailure) if a node dies or stops
publishing commands and status afterwards. Its waits are upper bounds on conditions.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.serialization import serialize_message

from robot_policy.graph import fuzz
from robot_policy.graph.fuzz_chunks import KINDS, ChunkMaker
from robot_policy.nodes.chunk_msgs import ChunkReader, ChunkRejected
from robot_policy.robots import load_robot

# What control_node answers each kind it must refuse with (robot_policy/nodes/chunk_msgs.py).
REASONS = {
    "nan": "non-finite action",
    "inf": "non-finite action",
    "wrong_name": "do not match",
    "missing_name": "joint names: 7 given",
    "duplicate_name": "do not match",
    "ragged": "position count differs",
    "non_increasing": "not strictly increasing",
    "uneven": "not evenly spaced",
    "zero_stamp": "header.stamp is zero",
    "future_stamp": "ahead of the clock",
    "future_offset": "ahead of the clock",
    "wide_spacing": "max_point_spacing",
    "long_duration": "max_chunk_duration",
    "too_many_points": "max_chunk_points",
    "huge": "bytes, over the",
    "empty": "no points",
}
TABLE_TOLERANCE = 0.005  # m: contact and mesh round-off, not a link in the table


def test_every_kind_meets_the_chunk_reader_as_expected():
    robot = load_robot()
    reader = ChunkReader(robot.command_names)
    home = np.array([*robot.home, 0.04])
    maker = ChunkMaker(
        np.random.default_rng(0), robot, reader.limits, lambda: home, np.tile(robot.home, (2, 1))
    )
    assert {n for n, k in KINDS.items() if k.expect == "reject"} == set(REASONS)
    now = time.time()
    for name, kind in KINDS.items():
        for _ in range(1 if name == "huge" else 30):
            msg = kind.make(maker, now)
            raw = msg if isinstance(msg, bytes) else serialize_message(msg)
            if kind.expect == "reject":
                with pytest.raises(ChunkRejected, match=REASONS[name]):
                    reader.read(raw, now)
            elif kind.expect != "any":
                chunk = reader.read(raw, now)
                assert (chunk.end < now) == (kind.expect == "stale"), name


def test_a_small_campaign_breaks_no_limit_and_every_refused_kind_is_refused(isolated_ros_env):
    result = fuzz.run(chunks=400, seed=0, progress=False)
    kinds = result["kinds"]
    assert set(kinds) == set(KINDS)
    assert result["commands"] > 0
    assert result["commands_beyond_limits"] == 0, result
    assert result["table_clearance_min_m"] > -TABLE_TOLERANCE, result
    for name, fragment in REASONS.items():
        book = kinds[name]
        assert book["rejected"] >= 1, (name, book)
        assert any(fragment in reason for reason in book["reasons"]), (name, book)
    # From control_node's own totals, attribution aside: every refused chunk that arrived
    # (the depth-1 chunk topics drop what a busy subscriber has not taken yet) was refused.
    totals = result["status_chunks"]
    received = sum(totals[k] for k in fuzz.COUNTERS)
    dropped = result["chunks_sent"] - received
    assert totals["rejected"] >= sum(kinds[n]["sent"] for n in REASONS) - dropped, result
