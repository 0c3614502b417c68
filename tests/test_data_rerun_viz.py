"""`dataset viz --viewer rerun`: the .rrd holds the episode, read back with rerun-sdk's reader."""

from __future__ import annotations

import numpy as np
import pytest
from rerun.chunk import RrdReader  # the viz extra; make venv installs it

from robot_policy.cli import main
from robot_policy.collect import collect_scripted
from robot_policy.data import LeRobotDataset
from robot_policy.robots import load_robot


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz") / "push"
    collect_scripted("push", 2, root, seed=3, cameras=("front",), progress=False)
    return root


def read_rrd(path) -> dict[str, dict[str, list]]:
    """Every column of every entity, rows in order: {entity: {column: values}}."""
    entities: dict[str, dict[str, list]] = {}
    for chunk in RrdReader(path).stream():
        batch = chunk.to_record_batch()
        columns = entities.setdefault(chunk.entity_path, {})
        for name in batch.schema.names:
            columns.setdefault(name, []).extend(batch.column(name).to_pylist())
    return entities


def test_an_episode_in_rerun_has_its_joints_cameras_and_moving_robot(dataset, tmp_path):
    out = tmp_path / "episode1.rrd"
    assert main(["dataset", "viz", str(dataset), "--episode", "1", "--viewer", "rerun",
                 "--save", str(out)]) == 0  # fmt: skip
    ds = LeRobotDataset(dataset)
    start, end = ds.episode_bounds(1)
    logged = read_rrd(out)
    state = ds.column("observation.state")[start:end]
    robot = load_robot("panda")
    for i, name in enumerate(robot.command_names):
        column = logged[f"/observation.state/{name}"]
        assert column["frame"] == list(range(end - start))
        np.testing.assert_allclose(np.ravel(column["Scalars:scalars"]), state[:, i], rtol=1e-6)
        assert f"/action/{name}" in logged
    front = logged["/cameras/front"]
    assert len(front["Image:buffer"]) == end - start
    first = np.asarray(front["Image:buffer"][0], dtype=np.uint8).reshape(96, 96, 3)
    np.testing.assert_array_equal(
        first, ds.frames("observation.images.front", np.array([start]))[0]
    )
    # The URDF's meshes resolved (package://meshes/... beside pybullet_data's panda.urdf) and
    # every arm joint animated: a transform per frame, rotating as the joint moved.
    assert any(path.startswith("/robot/") and "visual" in path for path in logged)
    joint = logged["/robot/joints/panda_joint4"]
    assert len(joint["Transform3D:quaternion"]) == end - start
    assert not np.allclose(joint["Transform3D:quaternion"][0], joint["Transform3D:quaternion"][-1])
    assert logged["/task"]["TextDocument:text"] == [[ds.tasks[0]]]


def test_rerun_viz_refuses_a_missing_episode(dataset, tmp_path, capsys):
    assert main(["dataset", "viz", str(dataset), "--episode", "5", "--viewer", "rerun",
                 "--save", str(tmp_path / "x.rrd")]) != 0  # fmt: skip
    assert "episode 5 does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.rrd").exists()
