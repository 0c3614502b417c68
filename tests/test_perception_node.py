"""perception_node over real rclpy on loopback: stamps survive, sizes are the policy's, bad frames
and bad settings are reported without taking the node down.

Each test gets its own rclpy.Context, ROS_DOMAIN_ID and localhost-only discovery; waits are on
conditions with timeouts (discovery bounds), never sleeps that make a test pass.
"""

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from test_perception_sources import PTS_MS, write_video

from robot_policy.nodes.common import SENSOR_QOS, STATE_QOS, to_seconds
from robot_policy.nodes.images import image_to_msg
from robot_policy.nodes.perception_node import PerceptionNode

DISCOVERY_S = 20.0  # an upper bound for discovery on loopback, not a wait that makes a test pass
STAMP = Time(sec=1234, nanosec=567_890_123)


@pytest.fixture
def context(isolated_ros_env):
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


class Harness:
    """A camera-side publisher and a policy-side listener next to one perception node."""

    def __init__(self, context: rclpy.Context, camera: str = "front", **parameters) -> None:
        self.node = rclpy.create_node("perception_test_harness", context=context)
        self.images: list[Image] = []
        self.statuses: list[DiagnosticStatus] = []
        self.raw = self.node.create_publisher(Image, f"/camera/{camera}/image_raw", SENSOR_QOS)
        self.listener = self.node.create_subscription(
            Image, f"/camera/{camera}/image_policy", self.images.append, SENSOR_QOS
        )
        self.node.create_subscription(
            DiagnosticArray, "/perception/status", lambda m: self.statuses.extend(m.status),
            STATE_QOS,
        )  # fmt: skip
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        overrides = [Parameter("camera_name", value=camera)]
        overrides += [Parameter(k, value=v) for k, v in parameters.items()]
        self.perception = PerceptionNode(context=context, parameter_overrides=overrides)

    def start(self) -> None:
        self.executor.add_node(self.perception)

    def spin_until(self, done: Callable[[], bool], publish: Image | None = None) -> bool:
        """Spin (re-publishing `publish`: best effort drops frames sent before discovery)."""
        deadline = time.monotonic() + DISCOVERY_S
        while not done() and time.monotonic() < deadline:
            if publish is not None:
                self.raw.publish(publish)
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def close(self) -> None:
        self.executor.shutdown()
        self.perception.close()
        self.perception.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(context):
    made: list[Harness] = []

    def make(**parameters) -> Harness:
        made.append(Harness(context, **parameters))
        return made[-1]

    yield make
    for h in made:
        h.close()


def bgr_frame(height: int = 480, width: int = 640) -> Image:
    msg = image_to_msg(np.zeros((height, width, 3), np.uint8), STAMP, "front_camera")
    msg.encoding = "bgr8"
    msg.data = np.tile(np.array([10, 40, 200], np.uint8), height * width).tobytes()
    return msg


def latest_value(statuses: list[DiagnosticStatus], key: str) -> str:
    return {kv.key: kv.value for kv in statuses[-1].values}[key] if statuses else ""


def test_a_camera_frame_comes_out_at_policy_size_with_the_same_stamp(harness):
    h = harness()
    h.start()
    assert h.spin_until(lambda: bool(h.images), publish=bgr_frame()), "no processed image"
    out = h.images[0]
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (1234, 567_890_123)
    assert out.header.frame_id == "front_camera"
    assert (out.height, out.width, out.encoding, out.step) == (96, 96, "rgb8", 288)
    pixels = np.frombuffer(bytes(out.data), np.uint8).reshape(96, 96, 3)
    assert np.all(pixels == [200, 40, 10])  # bgr8 in, rgb8 out

    assert h.spin_until(lambda: bool(h.statuses))
    status = h.statuses[-1]
    assert status.name == "perception_node: front"
    assert int(latest_value(h.statuses, "frames_published")) >= 1
    assert 0 < float(latest_value(h.statuses, "processing_ms_p50")) < 1000


def test_bad_frames_are_reported_and_the_node_keeps_working(harness):
    h = harness()
    h.start()
    yuv = bgr_frame()
    yuv.encoding = "yuv422"
    empty = image_to_msg(np.zeros((1, 1, 3), np.uint8), STAMP)
    empty.height = empty.width = empty.step = 0
    empty.data = b""

    for bad, reason in ((yuv, "unsupported image encoding 'yuv422'"), (empty, "empty image")):
        assert h.spin_until(lambda r=reason: r in latest_value(h.statuses, "last_error"), bad)
        assert h.statuses[-1].level == DiagnosticStatus.WARN
        assert "frames lost" in h.statuses[-1].message
    assert not h.images
    assert h.spin_until(lambda: bool(h.images), publish=bgr_frame()), "node stopped working"
    assert int(latest_value(h.statuses, "frames_rejected")) >= 2


def test_preprocessing_can_be_changed_at_run_time_and_bad_values_are_refused(harness):
    h = harness()
    h.start()
    refused = h.perception.set_parameters([Parameter("output_size", value=[0, 96])])[0]
    assert not refused.successful and "output_size" in refused.reason
    fixed = h.perception.set_parameters([Parameter("source", value="0")])[0]
    assert not fixed.successful and "fixed at start" in fixed.reason
    crop = Parameter("crop", Parameter.Type.INTEGER_ARRAY, [0, 0, 800, 480])
    assert h.perception.set_parameters([crop])[0].successful  # fits no frame yet: not an error
    resized = Parameter("output_size", value=[64, 48])
    crop = Parameter("crop", Parameter.Type.INTEGER_ARRAY, [0, 0, 480, 640])
    assert all(r.successful for r in h.perception.set_parameters([resized, crop]))
    frame = bgr_frame(height=640, width=480)
    assert h.spin_until(lambda: bool(h.images), publish=frame)
    assert (h.images[-1].height, h.images[-1].width) == (64, 48)


def test_bad_settings_at_start_fail_with_the_reason(context, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        PerceptionNode(
            context=context,
            parameter_overrides=[
                Parameter("calibration_file", value=str(tmp_path / "missing.yaml"))
            ],
        )
    with pytest.raises(ValueError, match="crop"):
        PerceptionNode(
            context=context,
            parameter_overrides=[Parameter("crop", Parameter.Type.INTEGER_ARRAY, [0, 0, -5, 5])],
        )


def test_a_video_file_source_publishes_every_frame_stamped_at_capture(harness, tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, size=(120, 160))
    h = harness(camera="replay", source=str(path), publish_rate=100.0)
    # Both ends matched before the node reads: best-effort frames sent earlier are gone.
    assert h.spin_until(
        lambda: (
            h.perception.image_pub.get_subscription_count() > 0
            and h.listener.get_publisher_count() > 0
        )
    )
    before = h.perception.get_clock().now().nanoseconds * 1e-9
    h.start()
    assert h.spin_until(lambda: any(s.level == DiagnosticStatus.STALE for s in h.statuses))
    after = h.perception.get_clock().now().nanoseconds * 1e-9
    assert len(h.images) == len(PTS_MS)
    stamps = [to_seconds(m.header.stamp) for m in h.images]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert before <= stamps[0] and stamps[-1] <= after
    assert {(m.height, m.width, m.header.frame_id) for m in h.images} == {(96, 96, "replay_camera")}
    assert h.statuses[-1].message.startswith("end of")


def test_the_console_script_is_the_node(tmp_path):
    script = Path(sys.executable).parent / "perception_node"
    result = subprocess.run(
        [str(script), "--ros-args", "-p", f"source:={tmp_path / 'absent.mp4'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "neither a device index, a URL, nor an existing video file" in result.stderr
