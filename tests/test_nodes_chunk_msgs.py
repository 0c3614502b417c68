"""Chunks on the wire and observation histories by timestamp (the nodes' ROS-free halves)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from trajectory_msgs.msg import JointTrajectoryPoint

from robot_policy.nodes.chunk_msgs import ChunkReader, ChunkRejected, chunk_from_msg, chunk_to_msg
from robot_policy.nodes.parameters import ControlNodeParameters
from robot_policy.runtime.chunks import ChunkLimits, TimedChunk
from robot_policy.runtime.observations import ObservationHistory

NAMES = ["j1", "j2", "gripper"]


def test_chunk_round_trip_keeps_time_and_reorders_by_name():
    chunk = TimedChunk(1234.5, 0.1, np.arange(12.0).reshape(4, 3))
    msg = chunk_to_msg(chunk, NAMES)
    back = chunk_from_msg(msg, NAMES)
    assert back.stamp == pytest.approx(1234.5, abs=1e-6) and back.dt == pytest.approx(0.1)
    np.testing.assert_allclose(back.actions, chunk.actions)
    reordered = chunk_from_msg(msg, ["gripper", "j1", "j2"])
    np.testing.assert_allclose(reordered.actions[:, 0], chunk.actions[:, 2])


def test_uneven_spacing_is_rejected():
    msg = chunk_to_msg(TimedChunk(10.0, 0.1, np.zeros((4, 3))), NAMES)
    msg.points[2].time_from_start.nanosec += 30_000_000
    with pytest.raises(ChunkRejected, match="evenly spaced"):
        chunk_from_msg(msg, NAMES)


NOW = 1000.0  # the receiver's clock in the bound tests


def policy_msg(stamp: float = NOW - 0.05, dt: float = 0.1, horizon: int = 16):
    """A chunk as policy_node sends it: stamped at its (past) observation, 0.1 s apart."""
    return chunk_to_msg(TimedChunk(stamp, dt, np.zeros((horizon, 3))), NAMES)


def test_policy_and_teleop_chunks_are_within_the_default_bounds():
    assert chunk_from_msg(policy_msg(), NAMES, NOW).horizon == 16
    teleop = chunk_to_msg(TimedChunk(NOW + 0.02, 0.1, np.zeros((3, 3))), NAMES)  # teleop_node
    assert chunk_from_msg(teleop, NAMES, NOW).stamp == pytest.approx(NOW + 0.02)


def test_a_chunk_starting_far_ahead_of_the_clock_is_rejected():
    with pytest.raises(ChunkRejected, match="ahead of the clock, over max_chunk_lead 0.5"):
        chunk_from_msg(policy_msg(stamp=NOW + 1e6), NAMES, NOW)
    late_points = policy_msg(stamp=NOW)  # the stamp is fine, the first point is not
    for point in late_points.points:
        point.time_from_start.sec += 1_000_000
    with pytest.raises(ChunkRejected, match="max_chunk_lead"):
        chunk_from_msg(late_points, NAMES, NOW)
    just_inside = policy_msg(stamp=NOW + 0.4)
    assert chunk_from_msg(just_inside, NAMES, NOW).stamp == pytest.approx(NOW + 0.4)
    with pytest.raises(ChunkRejected, match="max_chunk_lead 0.1"):
        chunk_from_msg(just_inside, NAMES, NOW, ChunkLimits(max_lead=0.1))


def test_a_chunk_covering_too_long_is_rejected():
    with pytest.raises(ChunkRejected, match=r"covers 6 s, over max_chunk_duration 5.0"):
        chunk_from_msg(policy_msg(horizon=60), NAMES, NOW)
    assert chunk_from_msg(policy_msg(horizon=50), NAMES, NOW).end == pytest.approx(NOW + 4.95)
    with pytest.raises(ChunkRejected, match="max_chunk_duration 1.0"):
        chunk_from_msg(policy_msg(), NAMES, NOW, ChunkLimits(max_duration=1.0))


def test_points_too_far_apart_are_rejected_and_a_single_point_holds_no_longer():
    # The adversarial case: 5 s apart, which kept the arm moving after its sender died.
    with pytest.raises(ChunkRejected, match=r"5 s apart, over max_point_spacing 0.5"):
        chunk_from_msg(policy_msg(dt=5.0, horizon=2), NAMES, NOW)
    assert chunk_from_msg(policy_msg(dt=0.5, horizon=4), NAMES, NOW).dt == pytest.approx(0.5)
    single = chunk_from_msg(policy_msg(horizon=1), NAMES, NOW)
    assert single.dt == pytest.approx(0.5)  # held for the bound, not the former 1 s
    loose = chunk_from_msg(policy_msg(horizon=1), NAMES, NOW, ChunkLimits(max_point_spacing=2))
    assert loose.dt == pytest.approx(1.0)


def test_too_many_points_or_joint_names_are_rejected_before_per_point_work():
    with pytest.raises(ChunkRejected, match="257 points, over max_chunk_points 256"):
        chunk_from_msg(policy_msg(dt=0.001, horizon=257), NAMES, NOW)
    huge = policy_msg()
    # 100,000 empty points: any per-point check would find them malformed and say so instead.
    huge.points = [JointTrajectoryPoint()] * 100_000
    with pytest.raises(ChunkRejected, match="100000 points, over max_chunk_points 256"):
        chunk_from_msg(huge, NAMES, NOW)
    many_names = policy_msg()
    many_names.joint_names = [f"j{k}" for k in range(100_000)]
    with pytest.raises(ChunkRejected, match="joint names: 100000 given, the controller has 3"):
        chunk_from_msg(many_names, NAMES, NOW)


def test_the_reader_refuses_oversized_messages_by_byte_count_unparsed():
    reader = ChunkReader(NAMES)
    back = reader.read(serialize_message(policy_msg()), NOW)
    assert back.horizon == 16 and back.dt == pytest.approx(0.1)
    largest = policy_msg(dt=0.001, horizon=256)
    for point in largest.points:  # every field full: still within the byte bound
        point.velocities = point.accelerations = point.effort = [0.0] * len(NAMES)
    assert reader.read(serialize_message(largest), NOW).horizon == 256
    # Garbage of 10 MB: refused on its length, since parsing it would fail differently.
    with pytest.raises(ChunkRejected, match=r"message of 10000000 bytes, over the \d+ that"):
        reader.read(bytes(10_000_000), NOW)
    huge = policy_msg()
    huge.points = [huge.points[0]] * 100_000
    with pytest.raises(ChunkRejected, match="max_chunk_points 256 allows"):
        reader.read(serialize_message(huge), NOW)
    with pytest.raises(ChunkRejected, match="max_chunk_lead"):  # the other bounds still apply
        reader.read(serialize_message(policy_msg(stamp=NOW + 1e6)), NOW)


def test_the_reader_counts_points_and_names_in_the_bytes_before_parsing(monkeypatch):
    # Points of positions alone fit the byte bound far beyond max_chunk_points, and building
    # 3000 of them held the GIL for 19 ms (bench fuzz): the count is read from the bytes.
    reader = ChunkReader(NAMES)
    long = serialize_message(policy_msg(dt=0.001, horizon=1000))
    assert len(long) < reader.max_bytes
    many_names = policy_msg()
    many_names.joint_names = [f"j{k}" for k in range(1000)]
    framed = policy_msg(horizon=300)
    framed.header.frame_id = "x" * 1001  # the counts are found past a frame id of any length
    import robot_policy.nodes.chunk_msgs as chunk_msgs

    def refuse(*args):
        raise AssertionError("parsed")

    monkeypatch.setattr(chunk_msgs, "deserialize_message", refuse)
    with pytest.raises(ChunkRejected, match="1000 points, over max_chunk_points 256"):
        reader.read(long, NOW)
    with pytest.raises(ChunkRejected, match="joint names: 1000 given, the controller has 3"):
        reader.read(serialize_message(many_names), NOW)
    with pytest.raises(ChunkRejected, match="300 points, over max_chunk_points 256"):
        reader.read(serialize_message(framed), NOW)
    for garbage in (b"", b"\x00\x01\x00\x00", bytes(range(7)), b"\x00\x07" + bytes(40)):
        with pytest.raises(ChunkRejected, match="not a JointTrajectory"):
            reader.read(garbage, NOW)


@settings(max_examples=40, deadline=None)
@given(frame=st.text(max_size=40), horizon=st.integers(1, 300), order=st.permutations(NAMES))
def test_the_counts_read_from_the_bytes_agree_with_the_parsed_message(frame, horizon, order):
    msg = policy_msg(dt=0.001, horizon=horizon)
    msg.header.frame_id = frame  # any length and alignment before the names
    msg.joint_names = list(order)
    reader = ChunkReader(NAMES)
    if horizon > 256:
        with pytest.raises(ChunkRejected, match=f"{horizon} points, over max_chunk_points"):
            reader.read(serialize_message(msg), NOW)
    else:
        assert reader.read(serialize_message(msg), NOW).horizon == horizon


def test_limits_come_from_control_node_parameters_and_are_validated():
    assert ControlNodeParameters().chunk_limits() == ChunkLimits(0.5, 5.0, 0.5, 256)
    custom = ControlNodeParameters(max_chunk_lead=0.1, max_chunk_points=20).chunk_limits()
    assert custom.max_lead == 0.1 and custom.max_points == 20
    for bad in ({"max_lead": -1.0}, {"max_duration": 0.0}, {"max_points": 0}):
        with pytest.raises(ValueError):
            ChunkLimits(**bad)


def test_history_is_by_time_with_zero_order_hold_and_start_padding():
    h = ObservationHistory(["s"], n_obs_steps=3, dt=0.1)
    assert h.window(1.0) is None
    for t, v in ((1.0, 1), (1.04, 2), (1.1, 3), (1.13, 4), (1.2, 5)):
        h.add("s", t, np.array([v]))

    def window(t):
        return h.window(t)["s"][:, 0]

    np.testing.assert_array_equal(window(1.2), [1, 3, 5])  # slots 1.0, 1.1, 1.2
    np.testing.assert_array_equal(window(1.13), [1, 1, 4])  # 1.03 holds the 1.0 sample
    np.testing.assert_array_equal(window(1.05), [1, 1, 2])  # padded with the oldest
    h.add("s", 1.01, np.array([9]))  # a late arrival lands in time order
    np.testing.assert_array_equal(window(1.02), [1, 1, 9])
    with pytest.raises(KeyError):
        h.add("other", 1.0, np.array([0]))
    # The stamp of the sample in the newest slot: what a chunk's camera age is counted from.
    assert h.stamp_at("s", 1.12) == 1.1 and h.stamp_at("s", 1.1 - 1e-7) == 1.1
    assert h.stamp_at("s", 0.5) is None
