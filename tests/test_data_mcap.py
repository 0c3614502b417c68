"""Importing rosbag2 MCAP recordings: real MCAP files written with mcap-ros2-support, whose
schemas are the installed ROS 2 message definitions (as `ros2 bag record` stores them), read
back through the importer and checked frame by frame against zero-order hold done by hand."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap_ros2.writer import Writer

from robot_policy.data import LeRobotDataset
from robot_policy.data.mcap_config import ImportConfig
from robot_policy.data.mcap_import import McapImportError, import_mcap

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "string", "wstring",
    *(f"{s}int{n}" for s in ("", "u") for n in (8, 16, 32, 64)),
}  # fmt: skip
T0_NS = 1_700_000_000 * 10**9
JOINTS = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1"]
FPS = 10


def _msg_file(package: str, name: str) -> Path:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in [*prefixes, sys.prefix]:
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    pytest.skip(f"ROS 2 message definitions not installed ({package}/{name}.msg; .[ros] extra)")


def msgdef(datatype: str) -> str:
    """The schema text rosbag2 stores: the type's .msg, then each dependency's after a rule."""
    package, _, name = datatype.split("/")
    text = _msg_file(package, name).read_text()
    parts, seen, todo = [text], set(), _dependencies(text, package)
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dep_package, dep_name = dep.split("/")
        dep_text = _msg_file(dep_package, dep_name).read_text()
        parts.append("=" * 80 + f"\nMSG: {dep}\n" + dep_text)
        todo += _dependencies(dep_text, dep_package)
    return "\n".join(parts)


def _dependencies(text: str, package: str) -> list[str]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind = re.sub(r"(\[.*\]|<=\d+)$", "", line.split()[0])
        if kind not in PRIMITIVES:
            deps.append(kind.replace("/msg/", "/") if "/" in kind else f"{package}/{kind}")
    return deps


def stamp(t: float) -> dict:
    ns = T0_NS + round(t * 1e9)
    return {"sec": ns // 10**9, "nanosec": ns % 10**9}


def header(t: float) -> dict:
    return {"stamp": stamp(t), "frame_id": ""}


def log_time(t: float) -> int:
    return T0_NS + round(t * 1e9)


def state_values(i: int) -> np.ndarray:
    return np.array([j * 10 + i * 0.01 for j in range(len(JOINTS))])


def color(k: int) -> np.ndarray:
    return np.array([(40 + 9 * k) % 256, 200 - 5 * k, 90], dtype=np.uint8)


class Recording:
    """One MCAP as a recorder writes it (messages interleaved in arrival order), remembering
    each topic's message times (as the importer reads them) and values."""

    def __init__(self, path: Path):
        self.path = path
        self.queue: list[tuple[int, str, str, dict]] = []
        self.sent: dict[str, list[tuple[float, object]]] = {}

    def write(self, topic: str, datatype: str, t: float, msg: dict, value: object) -> None:
        self.queue.append((log_time(t), topic, datatype, msg))
        self.sent.setdefault(topic, []).append((log_time(t) * 1e-9, value))

    def joint_states(self, times: np.ndarray) -> None:
        order = [3, 0, 7, 1, 6, 2, 5, 4]  # never in index order: the importer must go by name
        for i, t in enumerate(times):
            values = state_values(i)
            msg = {
                "header": header(t),
                "name": [JOINTS[j] for j in order],
                "position": [float(values[j]) for j in order],
                "velocity": [],
                "effort": [],
            }
            self.write("/joint_states", "sensor_msgs/msg/JointState", t, msg, values)

    def commands(self, times: np.ndarray) -> None:
        for i, t in enumerate(times):
            data = 100.0 + i + np.arange(8) / 10
            msg = {"layout": {"dim": [], "data_offset": 0}, "data": data.tolist()}
            topic = "/forward_position_controller/commands"
            self.write(topic, "std_msgs/msg/Float64MultiArray", t, msg, data)

    def images(self, times: np.ndarray, height: int = 24, width: int = 32, latency: float = 0):
        """Images stamped `latency` seconds before the recorder receives them."""
        step = width * 3 + 4  # padded rows, as some drivers send them
        for k, t in enumerate(times):
            bgr = np.zeros((height, step), dtype=np.uint8)
            bgr[:, : width * 3] = np.tile(color(k)[::-1], width)
            msg = {
                "header": header(t - latency),
                "height": height,
                "width": width,
                "encoding": "bgr8",
                "is_bigendian": 0,
                "step": step,
                "data": bgr.tobytes(),
            }
            self.write("/camera/front/image_raw", "sensor_msgs/msg/Image", t, msg, color(k))

    def finish(self) -> None:
        with open(self.path, "wb") as f:
            # Small chunks, so a file cut short still holds whole chunks (rosbag2 chunks too).
            writer = Writer(f, chunk_size=4096)
            schemas = {}
            for when, topic, datatype, msg in sorted(self.queue, key=lambda m: m[0]):
                if datatype not in schemas:
                    schemas[datatype] = writer.register_msgdef(datatype, msgdef(datatype))
                writer.write_message(topic, schemas[datatype], msg, log_time=when)
            writer.finish()


def config(**changes) -> ImportConfig:
    data = {
        "fps": FPS,
        "task": "pick",
        "robot_type": "panda",
        "features": {
            "observation.state": {"topic": "/joint_states", "joints": JOINTS},
            "action": {"topic": "/forward_position_controller/commands"},
            "observation.images.front": {"topic": "/camera/front/image_raw"},
        },
    }
    data.update(changes)
    return ImportConfig.from_dict(data)


def held(sent: list[tuple[float, object]], t: float) -> object:
    """Zero-order hold by brute force: the newest message at or before t."""
    return [value for when, value in sent if when <= t][-1]


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> tuple[Path, Recording]:
    path = tmp_path_factory.mktemp("mcap") / "demo.mcap"
    rec = Recording(path)
    rec.joint_states(0.003 + 0.02 * np.arange(100))  # 50 Hz, 0.003 .. 1.983 s
    rec.commands(0.131 + 0.047 * np.arange(38))  # ~21 Hz, 0.131 .. 1.870 s
    rec.images(0.057 + np.arange(28) / 15)  # 15 Hz, 0.057 .. 1.857 s
    rec.finish()
    return path, rec


def test_import_resamples_every_topic_by_zero_order_hold(bag, tmp_path):
    path, rec = bag
    result = import_mcap([path], tmp_path / "ds", config(), video_codec="libx264")
    first = max(sent[0][0] for sent in rec.sent.values())
    last = min(sent[-1][0] for sent in rec.sent.values())
    length = int(np.floor((last - first) * FPS + 1e-6)) + 1
    assert (result["episodes"], result["frames"]) == (1, length) and result["notes"] == []

    ds = LeRobotDataset(tmp_path / "ds")
    assert ds.fps == FPS and ds.info["robot_type"] == "panda" and ds.tasks == ["pick"]
    assert ds.features["observation.state"]["names"] == JOINTS
    assert ds.features["observation.images.front"]["shape"] == [24, 32, 3]
    episode = ds.episode(0)
    for k in range(length):
        t = first + k / FPS
        np.testing.assert_allclose(
            episode["observation.state"][k], held(rec.sent["/joint_states"], t), rtol=1e-6
        )
        np.testing.assert_allclose(
            episode["action"][k],
            held(rec.sent["/forward_position_controller/commands"], t),
            rtol=1e-6,
        )
        mean_rgb = episode["observation.images.front"][k].reshape(-1, 3).mean(axis=0)
        expected = held(rec.sent["/camera/front/image_raw"], t)
        assert np.abs(mean_rgb - expected).max() < 4, (k, mean_rgb, expected)


def test_header_clock_uses_the_stamps(tmp_path):
    path = tmp_path / "late_camera.mcap"
    rec = Recording(path)
    rec.joint_states(0.003 + 0.02 * np.arange(100))
    rec.commands(0.131 + 0.047 * np.arange(38))
    rec.images(0.057 + np.arange(28) / 15, latency=0.03)
    rec.finish()
    colors = [value for _, value in rec.sent["/camera/front/image_raw"]]
    stamped = [(log_time(0.027 + k / 15) * 1e-9, colors[k]) for k in range(28)]
    received = rec.sent["/camera/front/image_raw"]
    result = import_mcap([path], tmp_path / "ds", config(clock="header"), video_codec="libx264")
    start = result["episode_list"][0]["start_s"]
    images = LeRobotDataset(tmp_path / "ds").episode(0)["observation.images.front"]
    differs = 0
    for k, image in enumerate(images):
        t = start + k / FPS
        expected = held(stamped, t)
        assert np.abs(image.reshape(-1, 3).mean(axis=0) - expected).max() < 4
        differs += not np.array_equal(expected, held(received, t))
    assert differs > 0  # the receive times would have picked other images


def test_gap_split_and_joint_trajectory_commands(tmp_path):
    path = tmp_path / "two_demos.mcap"
    rec = Recording(path)
    rec.joint_states(0.003 + 0.02 * np.arange(300))  # 0 .. 6 s, continuous
    points = (0.05, 0.15, 0.25)
    samples: list[tuple[float, np.ndarray]] = []  # what JTC would execute, written by hand
    for burst_start in (0.5, 3.5):
        bases = burst_start + 0.073 * np.arange(21)
        for i, base in enumerate(bases):
            msg = {
                "header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""},  # "start now"
                "joint_names": JOINTS[::-1],
                "points": [
                    {
                        "positions": (np.arange(8)[::-1] + 10 * i + p).tolist(),
                        "velocities": [],
                        "accelerations": [],
                        "effort": [],
                        "time_from_start": {"sec": 0, "nanosec": round(p * 1e9)},
                    }
                    for p in points
                ],
            }
            topic = "/arm_controller/joint_trajectory"
            rec.write(topic, "trajectory_msgs/msg/JointTrajectory", base, msg, None)
            # The next trajectory (0.073 s later) replaces all but the first point.
            kept = points if i == len(bases) - 1 else points[:1]
            when = log_time(base) * 1e-9
            # Times as the importer forms them: receive time + time_from_start.
            samples += [(when + round(p * 1e9) * 1e-9, np.arange(8) + 10 * i + p) for p in kept]
    rec.finish()

    features = {
        "observation.state": {"topic": "/joint_states", "joints": JOINTS},
        "action": {"topic": "/arm_controller/joint_trajectory", "joints": JOINTS},
    }
    episodes = {"split": "gap", "topic": "/arm_controller/joint_trajectory", "gap_s": 1.0}
    result = import_mcap([path], tmp_path / "ds", config(features=features, episodes=episodes))
    assert result["episodes"] == 2
    ds = LeRobotDataset(tmp_path / "ds")
    for e, ep in enumerate(result["episode_list"]):
        start, stop = ds.episode_bounds(e)
        actions = ds.column("action")[start:stop]
        assert ep["frames"] == stop - start > 10
        for k, action in enumerate(actions):
            np.testing.assert_allclose(action, held(samples, ep["start_s"] + k / FPS), rtol=1e-6)
    # Episode 2 starts with its own first command, not one held over from episode 1.
    assert result["episode_list"][1]["start_s"] == pytest.approx(log_time(3.5) * 1e-9 + 0.05)


def test_rosbag2_folder_and_cli(bag, tmp_path):
    path, _ = bag
    folder = tmp_path / "rosbag2_demo"
    folder.mkdir()
    (folder / "rosbag2_demo_0.mcap").write_bytes(path.read_bytes())
    (folder / "metadata.yaml").write_text(
        "rosbag2_bagfile_information:\n  relative_file_paths: [rosbag2_demo_0.mcap]\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "robot_policy", "dataset", "import-mcap", str(folder),
         "--out", str(tmp_path / "ds"), "--config", str(repo / "config/mcap_import.yaml"),
         "--video-codec", "libx264", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["episodes"] == 1
    ds = LeRobotDataset(tmp_path / "ds")
    assert ds.features["action"]["names"][-1] == "gripper"  # labels from the shipped config
    assert ds.num_frames == result["frames"]


def test_truncated_recording_is_read_up_to_the_cut(bag, tmp_path):
    path, _ = bag
    cut = tmp_path / "cut.mcap"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = import_mcap([cut], tmp_path / "ds", config(), video_codec="libx264")
    assert result["episodes"] == 1 and "cut short" in result["notes"][0]
    full = import_mcap([path], tmp_path / "full", config(), video_codec="libx264")
    assert 0 < result["frames"] < full["frames"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": {"observation.state": {"topic": "/nothing_here"}}}, "no messages on"),
        ({"features": {"action": {"topic": "/joint_states", "joints": ["elbow"]}}}, "['elbow']"),
        (
            {"features": {"observation.images.front": {"topic": "/joint_states"}}},
            "cannot fill feature",
        ),
        ({"features": {"action": {"topic": "/joint_states", "field": "torque"}}}, "no field"),
    ],
)
def test_bad_mappings_fail_clearly_and_write_nothing(bag, tmp_path, change, message):
    path, _ = bag
    with pytest.raises(McapImportError, match=re.escape(message)):
        import_mcap([path], tmp_path / "ds", config(**change))
    assert list(tmp_path.iterdir()) == []  # not even a partial folder


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fps": 0}, "fps: must be >= 1, got 0"),
        ({"fsp": 10}, "unknown keys ['fsp']"),
        ({"clock": "wall"}, "clock: must be one of"),
        ({"episodes": {"split": "gap"}}, "needs episodes.topic"),
        ({"features": {"action": {"topic": "joint_states"}}}, "absolute topic name"),
        ({"features": {"observation.images.a": {"topic": "/c", "joints": ["a"]}}}, "only a topic"),
    ],
)
def test_bad_configs_are_refused(data, message):
    base = {"fps": 10, "task": "t", "features": {"action": {"topic": "/a"}}}
    with pytest.raises(ValueError, match=re.escape(message)):
        ImportConfig.from_dict({**base, **data})


def test_not_an_mcap_and_existing_output(tmp_path, bag):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"this is not a recording")
    with pytest.raises(McapImportError, match="cannot read it as ROS 2 MCAP"):
        import_mcap([junk], tmp_path / "ds", config())
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        import_mcap([bag[0]], tmp_path / "taken", config())
