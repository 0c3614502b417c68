"""policy_node: observation streams in, timestamped action chunks out — slow, and asynchronous.

Subscribes /joint_states (observation.state: arm joints + gripper width), the environment-state
           topic (sensor_msgs/JointState, e.g. /sim/environment_state) when the policy uses
           observation.environment_state, and one image topic per camera the policy was trained
           on (`image_topic` with {name} replaced, e.g. /camera/front/image_raw).
Publishes  /policy/action_chunk (trajectory_msgs/JointTrajectory; header.stamp = the time of the
           newest observation the chunk was computed from; point k at k·dt), /policy/status
           (diagnostic_msgs/DiagnosticArray, 1 Hz: inference latency, counts, errors; for an
           image policy `camera_frames`, the recent chunks' [stamp, stamp of the oldest camera
           frame the chunk was computed from], which `bench ros` joins with control_node's first
           command per chunk).
Services   /policy/restart (std_srvs/Trigger): forget the observation history and drop any
           chunk computed from before the call (a new episode, or the arm was moved by hand).
Every `replan_period` (less the recent inference latency, so the next chunk is there when the
previous one has run `n_action_steps`) the newest observation history (by timestamp) goes to
the policy, which runs in its own process (`ProcessInference`; with `backend: lerobot`, a
LeRobot policy in LeRobot's own Python, `LeRobotInference`) on SCHED_FIFO at
`inference_priority` when permitted: the policy's Python no longer shares a GIL with the
240 Hz joint-state callbacks (in a thread of this node, a chunk that `bench inference` times at
15 ms took 50-100 ms), and desktop work at normal priority cannot delay it. A thread of this
node waits on the child and publishes each chunk at once. The node never blocks a callback on
inference, and a failed inference is reported, not fatal: control_node's watchdog holds the arm
while no chunk covers the present.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_policy.features import ENV_STATE_KEY, IMAGE_PREFIX, STATE_KEY
from robot_policy.nodes import common
from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.images import msg_to_image
from robot_policy.nodes.parameters import PolicyNodeParameters
from robot_policy.pretrained import pretrained_path
from robot_policy.robots import load_robot
from robot_policy.runtime.lerobot_worker import LeRobotInference, policy_spec
from robot_policy.runtime.observations import ObservationHistory
from robot_policy.runtime.process_worker import ProcessInference
from robot_policy.runtime.worker import InferenceError

_WAIT = 0.1  # s: how long the publisher thread waits on the child before checking for a stop
_RECENT = 64  # chunks whose camera frames the status lists (~6 s at 10 Hz re-planning)


class PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        p = common.declare_parameters(self, PolicyNodeParameters)
        # The one inference set-up (policies.inference), in the child: what `bench` times is
        # what runs here. PolicyNodeParameters is an InferenceSettings.
        self.inference = p.resolved()
        checkpoint = p.checkpoint or str(pretrained_path())
        cfg = policy_spec(p.checkpoint, p.backend, p.fps)
        self.backend = p.backend
        self.robot = load_robot(p.robot)
        self.action_names = self.robot.command_names
        if cfg.action_dim != len(self.action_names):
            raise ValueError(
                f"{checkpoint}: action_dim {cfg.action_dim} does not match the robot's "
                f"{len(self.action_names)} commands ({', '.join(self.action_names)})"
            )
        dims = dict(zip(cfg.state_keys, cfg.state_dims, strict=True))
        if dims.get(STATE_KEY, len(self.action_names)) != len(self.action_names):
            raise ValueError(
                f"{checkpoint}: {STATE_KEY} has {dims[STATE_KEY]} dims, the robot's joint "
                f"state gives {len(self.action_names)} ({', '.join(self.action_names)})"
            )
        unsupported = [k for k in cfg.state_keys if k not in (STATE_KEY, ENV_STATE_KEY)]
        if unsupported:
            raise ValueError(f"{checkpoint}: no topic provides {unsupported}")
        self.dt = 1.0 / cfg.fps
        self.camera_keys = cfg.camera_keys
        self.history = ObservationHistory(
            (*cfg.state_keys, *cfg.camera_keys), cfg.n_obs_steps, self.dt
        )
        if p.backend == "lerobot":
            if p.latency_floor:
                raise ValueError("latency_floor rehearses our inference child; not backend lerobot")
            self.worker = LeRobotInference(
                cfg,
                p.lerobot_python or None,
                device=self.inference.device,
                threads=self.inference.threads,
                priority=p.inference_priority,
            )
        else:
            self.worker = ProcessInference(
                checkpoint,
                self.inference,
                niceness=0,
                priority=p.inference_priority,
                latency_floor=p.latency_floor,
            )
        self.worker.start()  # loads and warms up before any topic is read
        if p.inference_priority and self.worker.not_realtime:
            self.get_logger().warning(f"inference at normal priority: {self.worker.not_realtime}")
        self._lock = threading.Lock()
        self._restart_time = -math.inf
        self._last_request = -math.inf
        # The newest unsent request: observations, their stamp, the oldest camera frame's stamp.
        self._next: tuple[dict[str, np.ndarray], float, float | None] | None = None
        self._camera_frames: deque[tuple[float, float]] = deque(maxlen=_RECENT)
        self._lead_s = 0.0  # recent inference latency, p99 (publisher thread writes it)
        self._worker_stats = self.worker.stats()  # snapshot, taken by the publisher thread
        self.replan_period = p.replan_period or cfg.n_action_steps * self.dt
        self._counts = {"requests": 0, "published": 0, "dropped_old": 0, "errors": 0}
        self._last_error = ""

        self.chunk_pub = self.create_publisher(JointTrajectory, p.chunk_topic, common.COMMAND_QOS)
        self.status_pub = self.create_publisher(DiagnosticArray, "/policy/status", common.STATE_QOS)
        self.create_subscription(JointState, "/joint_states", self._on_state, common.SENSOR_QOS)
        if ENV_STATE_KEY in cfg.state_keys:
            self.create_subscription(
                JointState, p.environment_topic, self._on_environment, common.SENSOR_QOS
            )
        for key in cfg.camera_keys:
            name = key.removeprefix(IMAGE_PREFIX)
            topic = p.image_topic.format(name=name)
            self.create_subscription(
                Image, topic, lambda msg, key=key: self._on_image(key, msg), common.SENSOR_QOS
            )
        self.create_service(Trigger, "/policy/restart", self._on_restart)
        self.create_timer(1.0, self._publish_status)
        self._submitted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_results, name="chunk-publisher")
        self._thread.start()

    def _on_state(self, msg: JointState) -> None:
        try:
            state = self.robot.command_vector(dict(zip(msg.name, msg.position, strict=True)))
        except (KeyError, ValueError) as exc:
            self._report(f"joint_states unusable: {exc}")
            return
        stamp = common.to_seconds(msg.header.stamp)
        with self._lock:
            self.history.add(STATE_KEY, stamp, state.astype(np.float32))
            # One action step is the shortest period: only then is the latency looked up,
            # not on every joint state (240 Hz).
            since = stamp - self._last_request + 1e-6
            due = since >= self.dt and since >= self._lead_period()
        if due:
            self._request()

    def _on_environment(self, msg: JointState) -> None:
        with self._lock:
            self.history.add(
                ENV_STATE_KEY,
                common.to_seconds(msg.header.stamp),
                np.asarray(msg.position, dtype=np.float32),
            )

    def _on_image(self, key: str, msg: Image) -> None:
        try:
            image = msg_to_image(msg)
        except ValueError as exc:
            self._report(f"{key}: {exc}")
            return
        with self._lock:
            self.history.add(key, common.to_seconds(msg.header.stamp), image)

    def _lead_period(self) -> float:
        """The replan period shortened by the recent inference latency (99th percentile), so
        a chunk arrives about when the previous one has executed `n_action_steps` actions
        rather than that much later; never shorter than one action step."""
        return max(self.dt, self.replan_period - self._lead_s)

    def _request(self) -> None:
        """Hand the newest observation history to the publisher thread; the stamp is the
        newest state's time. A request not yet sent is replaced: a backlog of old observations
        would only produce chunks that are stale on arrival.

        Requests are paced by observation stamps (checked on every joint state), not by a
        timer, so the first request after a restart goes out with the first usable history.
        """
        with self._lock:
            stamp = self.history.latest(STATE_KEY)
            obs = self.history.window(stamp) if stamp is not None else None
            if obs is None or stamp <= self._restart_time:
                return
            self._last_request = stamp
            # window() found a frame at or before `stamp` for every camera: none is None.
            camera = min((self.history.stamp_at(k, stamp) for k in self.camera_keys), default=None)
            self._next = (obs, stamp, camera)
            self._counts["requests"] += 1
        self._submitted.set()

    def _publish_results(self) -> None:
        """The only thread that talks to the child: send the newest request, wait for its
        chunk (blocked on the pipe, holding no GIL), publish it."""
        while not self._stop.is_set():
            if not self._submitted.wait(timeout=_WAIT):
                continue
            self._submitted.clear()
            with self._lock:
                request, self._next = self._next, None
            if request is None:
                continue
            obs, stamp, camera = request
            self.worker.submit(obs, stamp)
            chunk = None
            try:
                while chunk is None and not self._stop.is_set():
                    chunk = self.worker.poll(timeout=_WAIT)
            except InferenceError as exc:
                self._report(str(exc))
            stats = self.worker.stats()
            self._worker_stats = stats
            if math.isfinite(stats["latency_ms_p99"]):
                self._lead_s = stats["latency_ms_p99"] / 1e3
            if chunk is None:
                continue
            if chunk.stamp <= self._restart_time:
                self._counts["dropped_old"] += 1
                continue
            self.chunk_pub.publish(chunk_to_msg(chunk, self.action_names))
            self._counts["published"] += 1
            if camera is not None:
                self._camera_frames.append((chunk.stamp, camera))

    def _on_restart(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self.history.clear()
            self._restart_time = self.get_clock().now().nanoseconds * 1e-9
            self._last_request = -math.inf
            self._next = None
        response.success = True
        response.message = "history cleared"
        return response

    def _report(self, error: str) -> None:
        self._counts["errors"] += 1
        self._last_error = error
        self.get_logger().error(error, throttle_duration_sec=1.0)

    def status(self) -> dict:
        frames = list(self._camera_frames)  # one C-level copy: the publisher thread appends
        cameras = {"camera_frames": [list(f) for f in frames]} if self.camera_keys else {}
        return {
            **cameras,
            **self._counts,
            **self._worker_stats,
            # A LeRobot policy runs as LeRobot runs it (fp32): our precision settings are ours.
            "precision": "lerobot" if self.backend == "lerobot" else self.inference.precision,
            "device": self.inference.device,
            "inference_realtime": self.worker.not_realtime is None,
            "last_error": self._last_error,
        }

    def _publish_status(self) -> None:
        values = self.status()
        level = DiagnosticStatus.WARN if self._last_error else DiagnosticStatus.OK
        message = self._last_error or "running"
        self.status_pub.publish(
            common.diagnostics(self, "policy_node: inference", level, message, values)
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.worker.stop()


main = common.node_main(PolicyNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
