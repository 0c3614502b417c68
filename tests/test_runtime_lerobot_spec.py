"""Reading a LeRobot policy folder for policy_node's `backend: lerobot`, without LeRobot.

The folders are written the way `lerobot-train` 0.6.1 writes them (config.json's fields as in a
real ACT's; train_config.json's dataset root). Serving one needs LeRobot's own environment:
`make test-lerobot` (compat/lerobot/test_policy_backend.py) runs that part for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_policy.policies.checkpoint import CheckpointError
from robot_policy.runtime.child import ChildError
from robot_policy.runtime.lerobot_worker import (
    LeRobotChild,
    LeRobotInference,
    policy_spec,
    read_lerobot_policy,
)

INPUTS = {
    "observation.state": {"type": "STATE", "shape": [8]},
    "observation.environment_state": {"type": "ENV", "shape": [13]},
    "observation.images.front": {"type": "VISUAL", "shape": [3, 96, 96]},
}


def lerobot_folder(tmp_path: Path, inputs: dict = INPUTS, fps: int | None = 10) -> Path:
    folder = tmp_path / "pretrained_model"
    folder.mkdir()
    config = {
        "type": "act", "n_obs_steps": 1, "chunk_size": 16, "n_action_steps": 8,
        "input_features": inputs,
        "output_features": {"action": {"type": "ACTION", "shape": [8]}},
        "device": "cpu",
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    if fps is not None:
        dataset = tmp_path / "dataset"
        (dataset / "meta").mkdir(parents=True)
        (dataset / "meta/info.json").write_text(json.dumps({"fps": fps}))
        train = {"dataset": {"repo_id": "local/push", "root": str(dataset)}}
        (folder / "train_config.json").write_text(json.dumps(train))
    return folder


def test_a_lerobot_act_reads_as_policy_node_reads_ours(tmp_path):
    spec = read_lerobot_policy(lerobot_folder(tmp_path))
    assert spec.policy_type == "act"
    assert spec.state_keys == ("observation.state", "observation.environment_state")
    assert spec.state_dims == (8, 13)
    assert spec.camera_keys == ("observation.images.front",)
    assert (spec.fps, spec.n_obs_steps, spec.n_action_steps, spec.action_dim) == (10, 1, 8, 8)


def test_the_rate_comes_from_the_training_dataset_or_must_be_given(tmp_path):
    folder = lerobot_folder(tmp_path, fps=None)
    with pytest.raises(CheckpointError, match="policy_node.fps"):
        read_lerobot_policy(folder)
    assert read_lerobot_policy(folder, fps=30).fps == 30


@pytest.mark.parametrize(
    "key, ft",
    [
        ("observation.image", {"type": "VISUAL", "shape": [3, 96, 96]}),  # pusht's single camera
        ("observation.velocity", {"type": "STATE", "shape": [7]}),
    ],
)
def test_an_input_no_topic_provides_is_named(tmp_path, key, ft):
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        read_lerobot_policy(lerobot_folder(tmp_path, {**INPUTS, key: ft}))


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"type": "act"})])
def test_a_folder_that_is_not_a_lerobot_policy_is_refused(tmp_path, content):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match="not a LeRobot policy folder"):
        read_lerobot_policy(tmp_path)


def test_policy_spec_picks_the_reader_by_backend(tmp_path):
    assert policy_spec(lerobot_folder(tmp_path), "lerobot").policy_type == "act"
    assert policy_spec(None, "robot_policy").type == "flow"  # the shipped push_flow
    with pytest.raises(CheckpointError, match="needs a checkpoint"):
        policy_spec(None, "lerobot")
    with pytest.raises(ValueError, match="robot_policy or lerobot"):
        policy_spec(None, "torchscript")


def test_a_missing_lerobot_environment_says_how_to_make_it(tmp_path):
    spec = read_lerobot_policy(lerobot_folder(tmp_path))
    worker = LeRobotInference(spec, tmp_path / "no-python")
    with pytest.raises(ChildError, match="make lerobot-env"):
        worker.start()


def test_a_server_that_exits_before_connecting_is_reported_with_its_output(tmp_path):
    """`/bin/false` for LeRobot's interpreter: the failure comes back at once, not a hang."""
    spec = read_lerobot_policy(lerobot_folder(tmp_path))
    child = LeRobotChild(spec, "/bin/false", start_timeout=30)
    with pytest.raises(ChildError, match=r"server exited \(1\)"):
        child.start()
