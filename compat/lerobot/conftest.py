"""Round trips with the real `lerobot` package, run from its own environment (`make test-lerobot`).

LeRobot 0.6 needs Python >= 3.12 and torch < 2.12, this project Python 3.11 (pybullet) and
torch 2.13, so the two never share a process: these tests run in `.venv-lerobot` and drive
robot_policy through its own command line in `.venv` (`ROBOT_POLICY_VENV` overrides it), the way
a user who has both would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
OUR_VENV = Path(os.environ.get("ROBOT_POLICY_VENV", REPO / ".venv"))
# Columns LeRobot's writer adds itself; `add_frame` refuses them.
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
TASK = "push the cube onto the target"  # replaced by the dataset's own task where one is read


def lerobot_cli(name: str) -> str:
    """A LeRobot console script of this environment (its bin folder need not be on PATH)."""
    return str(Path(sys.executable).parent / name)


def ours(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs `robot-policy ARGS` in this project's environment; fails the test on a non-zero exit."""
    exe = OUR_VENV / "bin" / "robot-policy"
    if not exe.exists():
        pytest.fail(f"{exe} not found: run `make venv` first (or set ROBOT_POLICY_VENV)")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900)
    if done.returncode:
        pytest.fail(
            f"robot-policy {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
        )
    return done


def our_python(code: str, *args: str) -> Any:
    """Runs `code` with our interpreter; returns the JSON value it prints on its last line."""
    done = subprocess.run(
        [str(OUR_VENV / "bin" / "python"), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        pytest.fail(f"our python exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def collect(out: Path, episodes: int, seed: int, cameras: str = "front") -> None:
    """Scripted push episodes recorded by our `collect` (created or appended)."""
    ours("collect", "--task", "push", "--episodes", str(episodes), "--seed", str(seed),
         "--out", str(out), "--cameras", cameras)  # fmt: skip


def lerobot_features(root: Path) -> dict[str, dict]:
    """The user features of a dataset, in the form `LeRobotDataset.create` takes."""
    info = json.loads((root / "meta/info.json").read_text())
    return {
        key: {k: v for k, v in ft.items() if k != "info"}
        for key, ft in info["features"].items()
        if key not in DEFAULT_FEATURES
    }


def as_frame(item: dict, features: dict[str, dict]) -> dict:
    """A LeRobotDataset item turned back into what `add_frame` takes (images HWC uint8)."""
    frame: dict = {"task": item["task"]}
    for key, ft in features.items():
        value = item[key].numpy()
        if ft["dtype"] in ("video", "image"):
            value = np.round(value.transpose(1, 2, 0) * 255).astype(np.uint8)
        frame[key] = value
    return frame


def copy_episodes(src, dst, episodes: list[int]) -> None:
    """Re-records episodes of `src` (a loaded LeRobotDataset) into `dst` (one in write mode)."""
    features = lerobot_features(Path(src.root))
    starts = src.meta.episodes["dataset_from_index"]
    ends = src.meta.episodes["dataset_to_index"]
    for ep in episodes:
        for idx in range(starts[ep], ends[ep]):
            dst.add_frame(as_frame(src[idx], features))
        dst.save_episode()


@pytest.fixture(scope="session")
def ours_dataset(tmp_path_factory) -> Path:
    """Two push episodes with the front camera (AV1) by our collect; copy it before editing."""
    root = tmp_path_factory.mktemp("ours") / "push"
    collect(root, episodes=2, seed=0)
    return root


@pytest.fixture()
def ours_copy(ours_dataset, tmp_path) -> Path:
    root = tmp_path / "ours"
    shutil.copytree(ours_dataset, root)
    return root


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """Nothing here may reach the Hub; LeRobot's cache goes to the test's own folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "hf_lerobot"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert sys.version_info >= (3, 12), "run these in the LeRobot environment (make test-lerobot)"
