"""LeRobot policies in our graph: policy_node's `backend: lerobot` (issue 21, item 2).

A LeRobot ACT trained by `lerobot-train` on our push dataset (front camera + state) for a few
steps: our backend must serve the chunk LeRobot itself computes for the same observation, and
the ROS graph must run it closed loop through control_node's filter. Success is not asserted
here (a few steps of training); `BENCHMARKS.md` has the trained policy's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import lerobot_cli, our_python, ours
from lerobot.configs.policies import PreTrainedConfig
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.policies.factory import get_policy_class, make_pre_post_processors

FRAME = 20  # the observation both sides infer from

# Our side: the backend as policy_node runs it, fed the frame as our reader decodes it.
OUR_CHUNK = """
import json, sys
from robot_policy.data import LeRobotDataset
from robot_policy.runtime.lerobot_worker import LeRobotInference, read_lerobot_policy
spec = read_lerobot_policy(sys.argv[1])
frame = LeRobotDataset(sys.argv[2])[int(sys.argv[3])]
obs = {key: frame[key][None] for key in (*spec.state_keys, *spec.camera_keys)}
with LeRobotInference(spec, sys.argv[4]) as worker:
    worker.submit(obs, 1.5)
    chunk = worker.poll(timeout=60)
    stats = worker.stats()
print(json.dumps({"stamp": chunk.stamp, "dt": chunk.dt, "actions": chunk.actions.tolist(),
                  "completed": stats["completed"], "keys": [*spec.state_keys, *spec.camera_keys]}))
"""


@pytest.fixture(scope="session")
def act_policy(ours_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("act") / "train"
    done = subprocess.run(
        [lerobot_cli("lerobot-train"), "--policy.type=act", "--policy.device=cpu",
         "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null",
         "--policy.chunk_size=16", "--policy.n_action_steps=8", "--policy.dim_model=64",
         "--policy.dim_feedforward=128", "--dataset.repo_id=local/push",
         f"--dataset.root={ours_dataset}", "--dataset.video_backend=pyav", "--steps=2",
         "--batch_size=2", "--num_workers=0", "--save_freq=2", "--wandb.enable=false",
         f"--output_dir={out}"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out / "checkpoints" / "000002" / "pretrained_model"


def lerobot_chunk(policy_dir: Path, dataset: Path) -> np.ndarray:
    """LeRobot's own answer: its policy and processors, as `lerobot-eval` loads them."""
    cfg = PreTrainedConfig.from_pretrained(policy_dir)
    policy = get_policy_class(cfg.type).from_pretrained(policy_dir, config=cfg).eval()
    pre, post = make_pre_post_processors(cfg, pretrained_path=str(policy_dir))
    item = LeRobotDataset("local/push", root=dataset, video_backend="pyav")[FRAME]
    batch = {key: item[key][None] for key in cfg.input_features}
    with torch.inference_mode():
        return post(policy.predict_action_chunk(pre(batch)))[0].numpy()


def test_our_backend_serves_lerobots_own_chunk(act_policy, ours_dataset):
    mine = our_python(OUR_CHUNK, str(act_policy), str(ours_dataset), str(FRAME), sys.executable)
    assert set(mine["keys"]) == {
        "observation.state", "observation.environment_state", "observation.images.front",
    }  # fmt: skip
    assert (mine["stamp"], mine["dt"], mine["completed"]) == (1.5, 0.1, 1)
    actions = np.asarray(mine["actions"], np.float32)
    assert actions.shape == (16, 8)
    # The same frame, decoded by each side from the same AV1 stream: within a grey level.
    np.testing.assert_allclose(actions, lerobot_chunk(act_policy, ours_dataset), atol=1e-3)


def test_the_graph_runs_a_lerobot_policy_behind_the_filter(act_policy, monkeypatch):
    monkeypatch.setenv("ROBOT_POLICY_LEROBOT_PYTHON", sys.executable)
    done = ours("eval", "--ros", "--backend", "lerobot", "--checkpoint", str(act_policy),
                "--task", "push", "--episodes", "1", "--json")  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["policy"]["published"] > 0, report
    assert report["policy"]["precision"] == "lerobot"
    assert report["control"]["rate_hz"] > 90, report
