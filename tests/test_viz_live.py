"""The live views without ROS: what viz_node's calls put into an .rrd and into an MCAP.

The MCAP is read back with the `mcap` package (what Foxglove's own loader is built on) and its
messages decoded from their channels' schemas; the .rrd with rerun-sdk's reader.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from mcap.reader import make_reader
from rerun.chunk import RrdReader

from robot_policy.robots import load_robot
from robot_policy.viz.live import LiveView, open_view

ROBOT = load_robot("panda")
HOME = np.array([0.0, -0.5, 0.0, -2.3, 0.0, 1.9, 0.8, 0.08])
CHUNK = np.stack([HOME + [0.02 * k, 0, 0, 0, 0, 0, 0, 0] for k in range(8)])


def feed(view) -> None:
    """A second of a small graph: joint states, commands, a chunk, a camera frame, a status."""
    names = [*ROBOT.arm_joint_names, *(f.name for f in ROBOT.fingers)]
    for k in range(5):
        t = 100.0 + 0.2 * k
        view.joints(t, names, [*HOME[:7] + 0.01 * k, 0.04, 0.04])
        view.command(t, ROBOT.command_names, list(HOME))
    view.chunk(100.5, CHUNK)
    view.image(100.6, "front", np.full((96, 96, 3), 7, np.uint8))
    view.values(100.7, "safety_status", {"ticks": 100.0, "jitter_ms_p99": 0.4})
    view.close()


def test_the_planned_path_is_the_end_effector_through_the_chunk():
    path = LiveView(ROBOT).planned_path(CHUNK)
    assert path.shape == (8, 3)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert np.all(steps > 1e-3) and np.all(steps < 0.05)  # joint 1 turns: the tool sweeps


def test_rerun_view_writes_the_robot_joints_plan_camera_and_status(tmp_path):
    rrd = tmp_path / "live.rrd"
    feed(open_view("rerun", ROBOT, str(rrd)))
    rows: dict[str, int] = {}
    for chunk in RrdReader(rrd).stream():
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
    assert rows["/robot/joints/panda_joint4"] == 5
    assert rows["/robot/joints/panda_finger_joint1"] == 5
    assert rows["/joint_states/panda_joint1"] == 5 and rows["/command/gripper"] == 5
    assert rows["/chunk/planned_path"] == 1 and rows["/cameras/front"] == 1
    assert rows["/safety_status/jitter_ms_p99"] == 1


def test_foxglove_view_records_an_mcap_foxglove_opens(tmp_path):
    mcap = tmp_path / "live.mcap"
    feed(open_view("foxglove", ROBOT, str(mcap), port=0))
    seen: dict[str, list] = {}
    with open(mcap, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages():
            seen.setdefault(channel.topic, []).append((schema.name, channel, message))
    assert [s for s, _, _ in seen["/joint_states"]] == ["foxglove.JointStates"] * 5
    assert seen["/control/command"][0][0] == "foxglove.JointStates"
    assert seen["/policy/planned_path"][0][0] == "foxglove.SceneUpdate"
    assert seen["/camera/front/image_raw"][0][0] == "foxglove.RawImage"
    schema, channel, message = seen["/safety_status"][0]
    assert channel.message_encoding == "json"
    assert json.loads(message.data) == {"ticks": 100.0, "jitter_ms_p99": 0.4}
    assert seen["/joint_states"][2][2].log_time == int(100.4 * 1e9)


def test_an_unknown_viewer_is_refused():
    with pytest.raises(ValueError, match="rerun"):
        open_view("rviz", ROBOT)
