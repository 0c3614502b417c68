"""`bench ros`'s camera-frame-to-command figure: the per-chunk join of the two nodes' reports,
and an image policy run end to end through the graph (sim_node's camera, policy_node,
control_node)."""

from __future__ import annotations

import math

import pytest

from robot_policy.graph.camera_latency import camera_to_command_ms, chunk_key, collect_pairs
from robot_policy.nodes.common import to_seconds, to_stamp


def test_chunks_are_joined_on_their_stamp_as_it_travels_between_the_nodes():
    stamp = 1796651662.848123456
    travelled = to_seconds(to_stamp(stamp))  # policy_node -> JointTrajectory -> control_node
    cameras: dict[int, float] = {}
    commands: dict[int, float] = {}
    collect_pairs(cameras, [[stamp, stamp - 0.030], [stamp + 0.8, stamp + 0.75]])
    collect_pairs(commands, [[travelled, stamp + 0.020], [stamp + 5.0, stamp + 5.01]])
    collect_pairs(commands, [[travelled, stamp + 9.0]])  # in a later status: first kept
    latencies = camera_to_command_ms(cameras, commands)
    assert latencies == [pytest.approx(50.0)]  # only the chunk both nodes reported
    assert chunk_key(stamp) == chunk_key(travelled)
    assert camera_to_command_ms({}, commands) == []


def test_an_image_policy_runs_through_the_graph_and_its_camera_age_is_measured(
    tmp_path, isolated_ros_env
):
    from robot_policy.bench import ros
    from robot_policy.policies import FlowConfig, make_policy, save_policy

    config = FlowConfig(
        action_dim=8,
        state_keys=("observation.state",),
        state_dims=(8,),
        camera_keys=("observation.images.front",),
        down_dims=(32, 64),
        horizon=8,
        n_action_steps=4,
    )
    checkpoint = save_policy(make_policy(config), tmp_path / "image-ckpt")
    result = ros.run(seconds=6.0, task="push", checkpoint=checkpoint, log_path=tmp_path / "log")
    assert result["camera_chunks"] >= 3, result  # chunks computed from sim_node's camera
    # A command goes out after the frame it used was taken; and never more than a chunk's
    # span later (8 actions at 10 Hz) while the policy keeps up.
    assert 0 < result["camera_to_command_ms_p50"] <= result["camera_to_command_ms_p99"], result
    assert math.isfinite(result["inference_ms_p50"]), result
