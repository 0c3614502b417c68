"""`robot-policy` end to end, as a user runs it: the commands in CONTRACT.md and the README."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robot_policy", *args], capture_output=True, text=True, check=False
    )


def run_cli(*args: str) -> dict:
    proc = invoke(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cli") / "push"
    args = "collect --task push --episodes 2 --teleop scripted --seed 3 --cameras front --json"
    return out, run_cli(*args.split(), "--out", str(out))


def test_collect_reports_and_writes_v3_layout(collected):
    out, result = collected
    assert result["attempted"] == 2
    assert result["success_rate"] == 1.0
    assert result["episodes"] == 2 and result["frames"] > 0
    for rel in (
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
    ):
        assert (out / rel).is_file(), rel
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 2 and info["total_frames"] == result["frames"]
    table = pq.read_table(out / "data/chunk-000/file-000.parquet")
    stored = {k for k, spec in info["features"].items() if spec["dtype"] != "video"}
    assert set(table.column_names) == stored
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    for key in ("observation.state", "observation.environment_state", "action"):
        width = len(table.column(key)[0].as_py())
        assert [width] == info["features"][key]["shape"], key


def test_collect_appends_and_dataset_info_agrees(collected):
    out, first = collected
    args = "collect --task push --episodes 1 --seed 10 --cameras front --json"
    second = run_cli(*args.split(), "--out", str(out))
    info = run_cli("dataset", "info", str(out), "--json")
    assert info["episodes"] == first["episodes"] + second["episodes"]
    assert info["frames"] == first["frames"] + second["frames"]


def test_collect_rejects_appending_a_different_feature_set(collected):
    out, _ = collected
    # No camera this time: the features differ from the existing dataset's.
    proc = invoke(*"collect --task push --episodes 1 --json".split(), "--out", str(out))
    assert proc.returncode == 2
    assert "observation.images.front" in proc.stderr


def test_unknown_task_is_a_usage_error():
    proc = invoke(*"collect --task fly --episodes 1 --out x".split())
    assert proc.returncode == 2 and "fly" in proc.stderr


def test_up_prints_the_effective_parameters_without_starting_nodes():
    result = run_cli(
        "up",
        str(Path(__file__).resolve().parents[1] / "config" / "sim_graph.yaml"),
        "--print-params",
        "--set",
        "control_node.rate_hz=50",
        "--json",
    )
    rate = result["control_node"]["rate_hz"]
    assert rate["value"] == 50 and rate["source"] == "override" and rate["description"]
    assert result["policy_node"]["precision"]["source"] == "default"
