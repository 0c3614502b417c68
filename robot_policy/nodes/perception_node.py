"""perception_node: camera frames in, the policy's image input out, stamps untouched.

Subscribes  /camera/<camera_name>/image_raw (sensor_msgs/Image rgb8, bgr8 or mono8, best
            effort) when `source` is "topic" — the sim_node's camera or a ROS camera driver.
Reads       an OpenCV source otherwise: a device index ("0"), a video file, or a stream URL
            ("rtsp://…"), at `publish_rate`; each frame is stamped with the node clock's time
            when it was grabbed (a file replays like a live camera).
Publishes   /camera/<camera_name>/image_policy (sensor_msgs/Image rgb8 of `output_size`, best
            effort): undistorted, cropped, resized; header.stamp and frame_id are the input's,
            so the policy stamps its chunk with the capture time, not the processing time.
            /perception/status (diagnostic_msgs/DiagnosticArray, 1 Hz): one status named
            "perception_node: <camera_name>" with frames received / published / rejected /
            dropped, per-frame processing latency (receipt to publish) and age (stamp to
            publish) as p50/p99 in ms over the last 2048 frames, and the last error.
A frame the node cannot use (unknown encoding, empty, a size the calibration does not
describe) is dropped with a throttled warning and counted in the status; the node keeps
running. `output_size`, `crop` and `calibration_file` can be changed at run time; a bad value
is refused with the reason and the previous settings stay in force.
"""

from __future__ import annotations

import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from robot_policy.nodes import common
from robot_policy.nodes.images import image_to_msg, msg_to_image
from robot_policy.nodes.parameters import PerceptionNodeParameters
from robot_policy.perception import OpenCVSource, PreprocessConfig, Preprocessor
from robot_policy.recent import RecentWindow
from robot_policy.settings import flatten

# The preprocessing can change while running; the wiring (topics, source, rate) cannot.
RECONFIGURABLE = ("output_size", "crop", "calibration_file")
NAMES = {p.name for p in flatten(PerceptionNodeParameters)}
FALLBACK_RATE_HZ = 30.0  # for sources that report no frame rate (many network streams)
STATUS_PERIOD_S = 1.0


def preprocess_config(values: dict[str, Any]) -> PreprocessConfig:
    """The node's parameters as the ROS-free settings, so both validate in one place."""
    return PreprocessConfig.from_dict(
        {
            "output_size": list(values["output_size"]),
            "crop": list(values["crop"]) or None,
            "calibration": values["calibration_file"] or None,
        }
    )


class PerceptionNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("perception_node", **kwargs)
        param = common.declare_parameters(self, PerceptionNodeParameters)
        settings = {name: self._value(name) for name in RECONFIGURABLE}
        self._preprocessor = Preprocessor(preprocess_config(settings))
        self.camera_name = str(param.camera_name)
        self.source_name = str(param.source)
        self._frame_id = param.frame_id or f"{self.camera_name}_camera"
        self._counts = {"received": 0, "published": 0, "rejected": 0, "dropped": 0}
        self._reported = dict(self._counts)
        self._last_error = ""
        self._processing = RecentWindow()
        self._age = RecentWindow()
        self._source: OpenCVSource | None = None
        self._ended = False

        self.image_pub = self.create_publisher(
            Image, f"/camera/{self.camera_name}/image_policy", common.SENSOR_QOS
        )
        self.status_pub = self.create_publisher(
            DiagnosticArray, "/perception/status", common.STATE_QOS
        )
        if self.source_name == "topic":
            self.create_subscription(
                Image, f"/camera/{self.camera_name}/image_raw", self._on_image, common.SENSOR_QOS
            )
        else:
            calibration = self._preprocessor.config.calibration
            self._source = OpenCVSource(
                self.source_name,
                frame_size=None if calibration is None else (calibration.width, calibration.height),
                clock=lambda: self.get_clock().now().nanoseconds * 1e-9,
            )
            rate = float(param.publish_rate) or self._source.fps or FALLBACK_RATE_HZ
            self._read_timer = self.create_timer(1.0 / rate, self._on_tick)
        self.create_timer(STATUS_PERIOD_S, self._publish_status)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _value(self, name: str) -> Any:
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:
            return []

    def _on_image(self, msg: Image) -> None:
        received = time.perf_counter()
        self._counts["received"] += 1
        try:
            image = self._preprocessor.process(msg_to_image(msg))
        except ValueError as error:
            self._reject(error)
            return
        self._publish(image, msg.header, received)

    def _on_tick(self) -> None:
        frame = self._source.read()
        if frame is None:
            if self._source.live:
                self._counts["dropped"] += 1
                self._last_error = f"no frame from {self.source_name}"
                self.get_logger().warning(self._last_error, throttle_duration_sec=5.0)
            else:
                self._ended = True
                self._read_timer.cancel()
                self.get_logger().info(
                    f"end of {self.source_name} after {self._counts['received']} frames"
                )
            return
        received = time.perf_counter()
        self._counts["received"] += 1
        try:
            image = self._preprocessor.process(frame.image, bgr=True)
        except ValueError as error:
            self._reject(error)
            return
        self._publish(
            image, Header(stamp=common.to_stamp(frame.stamp), frame_id=self._frame_id), received
        )

    def _publish(self, image: Any, header: Header, received: float) -> None:
        self.image_pub.publish(image_to_msg(image, header.stamp, header.frame_id))
        self._counts["published"] += 1
        self._processing.add((time.perf_counter() - received) * 1e3)
        now = self.get_clock().now().nanoseconds * 1e-9
        self._age.add((now - common.to_seconds(header.stamp)) * 1e3)

    def _reject(self, error: Exception) -> None:
        self._counts["rejected"] += 1
        self._last_error = str(error)
        self.get_logger().warning(f"dropped a frame: {error}", throttle_duration_sec=5.0)

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        changed = {p.name: p.value for p in parameters}
        fixed = sorted(changed.keys() & NAMES - set(RECONFIGURABLE))
        if fixed:
            return SetParametersResult(
                successful=False, reason=f"{fixed} are fixed at start; restart the node"
            )
        if not changed.keys() & set(RECONFIGURABLE):
            return SetParametersResult(successful=True)
        settings = {name: self._value(name) for name in RECONFIGURABLE}
        settings.update({k: v for k, v in changed.items() if k in RECONFIGURABLE})
        try:
            preprocessor = Preprocessor(preprocess_config(settings))
        except (ValueError, TypeError, OSError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._preprocessor = preprocessor
        return SetParametersResult(successful=True)

    def diagnostic_status(self) -> DiagnosticStatus:
        """The status for the last period: WARN on dropped or rejected frames or none at all."""
        period = {k: self._counts[k] - self._reported[k] for k in self._counts}
        self._reported = dict(self._counts)
        if self._ended:
            level, message = DiagnosticStatus.STALE, f"end of {self.source_name}"
        elif period["rejected"] or period["dropped"]:
            lost = period["rejected"] + period["dropped"]
            level, message = DiagnosticStatus.WARN, f"{lost} frames lost: {self._last_error}"
        elif not period["received"]:
            level, message = DiagnosticStatus.WARN, "no frames"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        height, width = self._preprocessor.config.output_size
        values = {
            "source": self.source_name,
            "output_size": f"{height}x{width}",
            **{f"frames_{k}": str(v) for k, v in self._counts.items()},
            "processing_ms_p50": f"{self._processing.percentile(50):.3f}",
            "processing_ms_p99": f"{self._processing.percentile(99):.3f}",
            "age_ms_p50": f"{self._age.percentile(50):.3f}",
            "age_ms_p99": f"{self._age.percentile(99):.3f}",
            "last_error": self._last_error,
        }
        return DiagnosticStatus(
            level=level,
            name=f"perception_node: {self.camera_name}",
            message=message,
            hardware_id=self.camera_name,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )

    def _publish_status(self) -> None:
        status = DiagnosticArray(status=[self.diagnostic_status()])
        status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(status)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


main = common.node_main(PerceptionNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
