"""recorder_node: synchronized episodes from the graph's topics into a LeRobot v3 dataset.

Subscribes /joint_states (observation.state: arm joints + gripper width), the environment-state
           topic (observation.environment_state, names from the message), one image topic per
           camera (observation.images.<name>), `action_topic` (/control/command: the command
           control_node sent after its safety filter, i.e. what the arm was told, recorded as
           `action`), and optionally `intervention_topic` (teleop_node's /teleop/joy:
           buttons[1], the take-over, recorded per frame as `intervention`, int64 0/1).
Services   /recorder/start, /recorder/stop (save the episode; atomically committed),
           /recorder/discard (std_srvs/Trigger). A request in the wrong order (stop or discard
           while idle, start while recording, start before every topic has published) is
           refused with success=false and a message saying why; the recording is unchanged.
           A start is also refused while a recorded topic has no publisher this node has
           discovered: DDS discovery can take seconds on a busy machine, and an episode started
           before the command's publisher matched would record nothing.
           Replies are JSON (stop: episode index, frames, cadence and drop figures).
Publishes  /recorder/status (diagnostic_msgs/DiagnosticArray, 1 Hz and on every change; values
           are JSON: recording, frames of the episode in progress, episodes saved in the dataset,
           discarded this session, last_episode = the last stop's report, waiting_for = topics
           a start waits for: no matched publisher yet, or, before the first start, not heard
           from yet where their messages shape the dataset).
Frames are cut by `robot_policy.data.resample.ZeroOrderHold`: every stream by its header stamp,
at `fps`, starting once every topic has published after the start call. Callbacks only queue
what arrives; one thread owns the hold and the DatasetWriter, so video encoding never blocks a
callback. Every saved episode is a committed transaction: a recorder killed at any moment
leaves the episodes saved before intact and the dataset valid (a Ctrl-C or SIGTERM discards the
episode in progress).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, Joy
from std_srvs.srv import Trigger

from robot_policy.data import DatasetWriter
from robot_policy.data.commit import DatasetLockedError
from robot_policy.data.resample import Frame, ZeroOrderHold
from robot_policy.features import ACTION_KEY, ENV_STATE_KEY, IMAGE_KEY, STATE_KEY
from robot_policy.nodes import common
from robot_policy.nodes.images import msg_to_image
from robot_policy.nodes.parameters import RecorderNodeParameters
from robot_policy.nodes.recorder_episode import Episode, Request
from robot_policy.robots import load_robot

INTERVENTION_KEY = "intervention"

# A camera frame older than this many frame periods at a frame time means one went missing
# (the hold repeats the previous image); a camera keeping up is at most ~1 period old.
DROP_AGE_PERIODS = 1.5
REPLY_TIMEOUT = 120.0  # s a service waits for the recording thread (a long episode's save)
_STATUS_PERIOD = 1.0
_MATCH_PERIOD = 0.1  # s between the recording thread's checks of each topic's matched publishers


class RecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("recorder_node", **kwargs)
        p = common.declare_parameters(self, RecorderNodeParameters)
        if not p.root:
            raise SystemExit("recorder_node: set the dataset folder, e.g. -p root:=/data/push")
        if not p.task_text:
            raise SystemExit("recorder_node: set task_text, the instruction stored per frame")
        if p.fps <= 0:
            raise SystemExit(f"recorder_node: fps must be positive, got {p['fps']}")
        self.root = Path(p.root).expanduser().resolve()
        self.fps = int(p.fps)
        self.task_text = p.task_text
        self.video_codec = p.video_codec
        self.stop_wait = float(p.stop_wait)
        self.robot = load_robot(p.robot)
        self.names = self.robot.command_names
        self.cameras = [IMAGE_KEY.format(c) for c in p.cameras]

        topics = {STATE_KEY: "/joint_states", ACTION_KEY: p.action_topic}
        if p.environment_topic:
            topics[ENV_STATE_KEY] = p.environment_topic
        for name, key in zip(p.cameras, self.cameras, strict=True):
            topics[key] = p.image_topic.format(name=name)
        if p.intervention_topic:
            topics[INTERVENTION_KEY] = p.intervention_topic
        self.topics = topics
        self.hold = ZeroOrderHold(topics, self.fps)
        self.environment_names: list[str] | None = None
        self.writer: DatasetWriter | None = None
        self._episode: Episode | None = None
        self._stopping: tuple[Request, float] | None = None  # (request, monotonic deadline)
        self._failure = ""  # why the last episode was dropped, for the next stop's answer
        self._queue: queue.Queue = queue.Queue()

        self.status_pub = self.create_publisher(
            DiagnosticArray, "/recorder/status", common.STATE_QOS
        )
        sensor, state = common.SENSOR_QOS, common.STATE_QOS
        callbacks: dict[str, tuple[type, Any, Any]] = {
            STATE_KEY: (JointState, self._on_state, sensor),
            ACTION_KEY: (JointState, self._on_action, state),
            ENV_STATE_KEY: (JointState, self._on_environment, sensor),
            INTERVENTION_KEY: (Joy, self._on_joy, state),
        }
        for key in self.cameras:
            callbacks[key] = (Image, lambda msg, key=key: self._on_image(key, msg), sensor)
        self._recorded = {
            key: self.create_subscription(kind, topics[key], callback, qos)
            for key, (kind, callback, qos) in callbacks.items()
            if key in topics
        }
        self._unmatched = list(topics)
        self._matched_at = 0.0
        self._status: dict[str, Any] = {
            "recording": False,
            "episodes": None,
            "discarded": 0,
            "waiting_for": self._waiting_for(),
        }
        # Services wait for the recording thread, which waits for samples: their own group, so
        # the subscriptions keep running meanwhile.
        services = MutuallyExclusiveCallbackGroup()
        for action in ("start", "stop", "discard"):
            self.create_service(
                Trigger,
                f"/recorder/{action}",
                lambda req, res, action=action: self._on_request(action, res),
                callback_group=services,
            )
        self.create_timer(_STATUS_PERIOD, self._publish_status)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- callbacks: convert and queue --------------------------------------------------------

    def _sample(self, key: str, stamp: Any, value: Any) -> None:
        self._queue.put(("sample", key, common.to_seconds(stamp), value))

    def _on_state(self, msg: JointState) -> None:
        try:
            state = self.robot.command_vector(dict(zip(msg.name, msg.position, strict=True)))
        except (KeyError, ValueError) as exc:
            self.get_logger().error(f"joint_states unusable: {exc}", throttle_duration_sec=1.0)
            return
        self._sample(STATE_KEY, msg.header.stamp, state.astype(np.float32))

    def _on_action(self, msg: JointState) -> None:
        values = dict(zip(msg.name, msg.position, strict=False))
        missing = [n for n in self.names if n not in values]
        if missing:
            self.get_logger().error(f"command lacks {missing}", throttle_duration_sec=1.0)
            return
        action = np.array([values[n] for n in self.names], dtype=np.float32)
        self._sample(ACTION_KEY, msg.header.stamp, action)

    def _on_environment(self, msg: JointState) -> None:
        if self.environment_names is None:
            self.environment_names = list(msg.name)
        elif list(msg.name) != self.environment_names:
            self.get_logger().error(
                f"environment state names changed to {list(msg.name)}", throttle_duration_sec=1.0
            )
            return
        self._sample(ENV_STATE_KEY, msg.header.stamp, np.asarray(msg.position, np.float32))

    def _on_image(self, key: str, msg: Image) -> None:
        try:
            image = msg_to_image(msg)
        except ValueError as exc:
            self.get_logger().error(f"{key}: {exc}", throttle_duration_sec=1.0)
            return
        self._sample(key, msg.header.stamp, image)

    def _on_joy(self, msg: Joy) -> None:
        flag = int(len(msg.buttons) > 1 and msg.buttons[1] != 0)
        self._sample(INTERVENTION_KEY, msg.header.stamp, np.array([flag], dtype=np.int64))

    def _on_request(self, action: str, response: Trigger.Response) -> Trigger.Response:
        request = Request(action, self.now())
        self._queue.put(("request", request))
        if request.done.wait(REPLY_TIMEOUT):
            response.success, response.message = request.success, request.message
        else:
            response.success = False
            response.message = f"recorder busy: no answer within {REPLY_TIMEOUT} s"
        return response

    # --- the recording thread: owns the hold and the writer ----------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                item = None
            if item is not None and item[0] == "quit":
                return
            if item is not None and item[0] == "sample":
                _, key, stamp, value = item
                self.hold.add(key, stamp, value)
                if self._episode is not None:
                    self._episode.received[key] = self._episode.received.get(key, 0) + 1
                    if self._stopping is None:
                        self._write(self.hold.ready())
            elif item is not None:
                self._handle(item[1])
            self._finish_stop()
            self._check_matches()

    def _check_matches(self) -> None:
        """Track which topics have no discovered publisher, at most every `_MATCH_PERIOD`."""
        now = time.monotonic()
        if now - self._matched_at < _MATCH_PERIOD:
            return
        self._matched_at = now
        self._unmatched = [k for k, sub in self._recorded.items() if sub.get_publisher_count() == 0]
        waiting = self._waiting_for()
        if waiting != self._status["waiting_for"]:
            self._set_status(waiting_for=waiting)

    def _waiting_for(self) -> list[str]:
        """Topics a start waits for, in the order the node subscribed them."""
        keys = set(self._unmatched)
        if self.writer is None:
            keys.update(self._shaped())
        return [self.topics[k] for k in self.topics if k in keys]

    def _handle(self, request: Request) -> None:
        handler = {"start": self._start, "stop": self._stop, "discard": self._discard}
        handler[request.action](request)

    def _start(self, request: Request) -> None:
        if self._episode is not None:
            when = request.time - self._episode.requested
            request.answer(False, f"already recording (started {when:.1f} s ago): stop or discard")
            return
        if self.writer is None and self._shaped():
            names = ", ".join(self.topics[k] for k in self._shaped())
            request.answer(False, f"nothing received yet on {names}: is the graph up?")
            return
        if self._unmatched:
            names = ", ".join(self.topics[k] for k in self._unmatched)
            request.answer(False, f"no publisher discovered yet on {names}: is the graph up?")
            return
        try:
            if self.writer is None:
                self.writer = DatasetWriter(
                    self.root,
                    fps=self.fps,
                    features=self._features(),
                    robot_type=self.robot.name,
                    video_codec=self.video_codec,
                )
        except (ValueError, OSError, DatasetLockedError) as exc:  # other features, locked, ...
            request.answer(False, f"cannot record into {self.root}: {exc}")
            return
        self.hold.begin(after=request.time)
        self._episode = Episode(requested=request.time)
        self._failure = ""
        self._set_status(recording=True, episodes=self.writer.num_episodes)
        request.answer(True, json.dumps({"episode": self.writer.num_episodes}))

    def _stop(self, request: Request) -> None:
        if self._episode is None:
            why = f" (the last episode was dropped: {self._failure})" if self._failure else ""
            request.answer(False, f"not recording: call /recorder/start first{why}")
            return
        self._stopping = (request, time.monotonic() + self.stop_wait)

    def _finish_stop(self) -> None:
        """Complete a pending stop once every topic passed its time (or after `stop_wait`)."""
        if self._stopping is None:
            return
        request, deadline = self._stopping
        if not self.hold.passed(request.time) and time.monotonic() < deadline:
            return
        self._stopping = None
        self._write(self.hold.finish(request.time))
        episode, self._episode = self._episode, None
        assert self.writer is not None and episode is not None
        if not self.writer.episode_frames:
            self.writer.discard_episode()
            silent = [self.topics[k] for k in self.hold.keys if k not in episode.received]
            request.answer(False, f"no frame recorded: nothing since start on {silent}")
        else:
            index = self.writer.save_episode()
            report = episode.report(self.cameras, 1.0 / self.fps)
            request.answer(True, json.dumps({"episode": index, **report}))
            self._set_status(last_episode={"episode": index, **report})
        self._set_status(recording=False, episodes=self.writer.num_episodes)

    def _discard(self, request: Request) -> None:
        if self._episode is None:
            request.answer(False, "not recording: nothing to discard")
            return
        assert self.writer is not None
        frames = self.writer.episode_frames
        self.hold.abort()
        self.writer.discard_episode()
        self._episode = None
        self._set_status(recording=False, discarded=self._status["discarded"] + 1)
        request.answer(True, json.dumps({"discarded_frames": frames}))

    def _write(self, frames: list[Frame]) -> None:
        episode = self._episode
        if episode is None or self.writer is None:
            return
        limit = DROP_AGE_PERIODS / self.fps
        for frame in frames:
            try:
                self.writer.add_frame(dict(frame.values), task=self.task_text)
            except ValueError as exc:  # e.g. a camera changed resolution mid-episode
                self._drop_episode(str(exc))
                return
            episode.writes.append(self.now())
            episode.frame_times.append(frame.time)
            for key, age in frame.ages.items():
                if age > limit:
                    episode.stale[key] = episode.stale.get(key, 0) + 1

    def _drop_episode(self, reason: str) -> None:
        self.get_logger().error(f"episode dropped: {reason}")
        assert self.writer is not None
        self.hold.abort()
        self.writer.discard_episode()
        self._episode, self._failure = None, reason
        if self._stopping is not None:
            self._stopping[0].answer(False, f"episode dropped: {reason}")
            self._stopping = None
        self._set_status(recording=False)

    def _shaped(self) -> list[str]:
        """Streams not heard from yet whose messages define features (image sizes, the
        environment state's names): the dataset cannot be created before they publish."""
        return [k for k in self.hold.missing() if k == ENV_STATE_KEY or k in self.cameras]

    def _features(self) -> dict[str, dict[str, Any]]:
        features: dict[str, dict[str, Any]] = {
            STATE_KEY: {"dtype": "float32", "shape": [len(self.names)], "names": self.names},
        }
        if ENV_STATE_KEY in self.topics:
            names = self.environment_names or []
            features[ENV_STATE_KEY] = {"dtype": "float32", "shape": [len(names)], "names": names}
        for key in self.cameras:
            latest = self.hold.latest(key)
            assert latest is not None
            features[key] = {
                "dtype": "image",
                "shape": list(latest[1].shape),
                "names": ["height", "width", "channels"],
            }
        features[ACTION_KEY] = {"dtype": "float32", "shape": [len(self.names)], "names": self.names}
        if INTERVENTION_KEY in self.topics:
            features[INTERVENTION_KEY] = {"dtype": "int64", "shape": [1], "names": None}
        return features

    # --- status ------------------------------------------------------------------------------

    def _set_status(self, **values: Any) -> None:
        self._status = {**self._status, **values}
        self._publish_status()

    def _publish_status(self) -> None:
        writer = self.writer
        values = {**self._status, "frames": writer.episode_frames if writer is not None else 0}
        message = "recording" if values["recording"] else "idle"
        self.status_pub.publish(
            common.diagnostics(
                self, "recorder_node", DiagnosticStatus.OK, message, values, str(self.root)
            )
        )

    def close(self) -> None:
        self._queue.put(("quit",))
        self._thread.join(timeout=10.0)
        if self.writer is not None:
            self.writer.close()


main = common.node_main(RecorderNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
