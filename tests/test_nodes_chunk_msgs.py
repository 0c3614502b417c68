"""Chunks on the wire and observation histories by timestamp (the nodes' ROS-free halves)."""

import numpy as np
import pytest

from robot_policy.nodes.chunk_msgs import ChunkRejected, chunk_from_msg, chunk_to_msg
from robot_policy.runtime.chunks import TimedChunk
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
