"""Real SIGKILLs of a recording process, mid-episode and at each step of a save.

A child process records two episodes, then starts a third and stops at a named point: after
adding frames, or inside the commit (files staged but no marker; marker written; first file
moved into place). There it reports the point on stdout and waits; the test SIGKILLs it at once.
No timing is involved: the child is parked at the point when it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_data_common import CAMERA, FEATURES, FPS, image, record

from robot_policy.data import DatasetWriter, LeRobotDataset, describe
from robot_policy.data.commit import MARKER

CHILD = r"""
import sys
root, point, tests_dir = sys.argv[1:4]
sys.path.insert(0, tests_dir)
from test_data_common import FEATURES, FPS, frame, record, task_of
from robot_policy.data import DatasetWriter, commit

def park():
    print(point, flush=True)
    sys.stdin.readline()  # the parent kills us while we wait here
    raise SystemExit("not killed")

writer = DatasetWriter(root, fps=FPS, features=FEATURES, video_codec="libx264")
record(writer, 0, 8)
record(writer, 1, 5)

write_marker, install = commit._write_marker, commit._install
if point == "staged":
    commit._write_marker = lambda pending: park()
elif point == "marked":
    def marked(pending):
        write_marker(pending)
        park()
    commit._write_marker = marked
elif point == "installing":
    def first_install(staged, dest):
        install(staged, dest)
        park()
    commit._install = first_install

for t in range(6):
    writer.add_frame(frame(2, t), task=task_of(2))
if point == "recording":
    park()
writer.save_episode()
"""

# Which episodes survive: a save killed before its commit marker is lost, one killed after it is
# rolled forward on the next open.
SURVIVORS = {"recording": [8, 5], "staged": [8, 5], "marked": [8, 5, 6], "installing": [8, 5, 6]}


def _kill_at(root: Path, point: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), point, str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == point
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", list(SURVIVORS))
def test_sigkill_leaves_saved_episodes_readable_and_appendable(tmp_path, point):
    _kill_at(tmp_path, point)
    assert (tmp_path / ".recording").exists()  # removed only after a successful commit
    assert (tmp_path / ".pending").exists() == (point != "recording")
    assert (tmp_path / ".pending" / MARKER).exists() == (point in ("marked", "installing"))

    if point == "installing":  # the new data file is in place, the metadata is not yet
        assert pq.read_metadata(tmp_path / "data/chunk-000/file-000.parquet").num_rows == 19
        assert json.loads((tmp_path / "meta/info.json").read_text())["total_episodes"] == 2

    lengths = SURVIVORS[point]
    ds = LeRobotDataset(tmp_path)  # recovers: rolls a marked commit forward, drops the rest
    assert not (tmp_path / ".pending").exists() and not (tmp_path / ".recording").exists()
    assert [e["length"] for e in ds.episodes] == lengths
    assert ds.num_frames == sum(lengths) == len(ds.column("index"))
    for e in range(len(lengths)):
        decoded = ds.episode(e)[CAMERA].astype(int)
        expected = np.stack([image(e, t) for t in range(lengths[e])]).astype(int)
        assert np.abs(decoded - expected).mean() < 8
    assert describe(tmp_path)["episodes"] == len(lengths)

    with DatasetWriter(tmp_path, fps=FPS, features=FEATURES) as w:
        assert record(w, 7, 4) == len(lengths)
    after = LeRobotDataset(tmp_path)
    assert [e["length"] for e in after.episodes] == lengths + [4]
    last = after.episode(len(lengths))[CAMERA].astype(int)
    assert np.abs(last - np.stack([image(7, t) for t in range(4)])).mean() < 8
    np.testing.assert_array_equal(after.column("index"), np.arange(sum(lengths) + 4))
