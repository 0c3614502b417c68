"""control_node: the fixed-rate loop that turns action chunks into safe commands for the arm.

Subscribes /joint_states (sensor_msgs/JointState), /policy/action_chunk
           (trajectory_msgs/JointTrajectory, header.stamp = observation time, uniform spacing),
           /teleop/action_chunk (the same, from an operator: while these keep arriving the
           policy's chunks are dropped — a human intervention — and the policy resumes
           `teleop_timeout` after the last one), /safety/e_stop (std_msgs/Bool, true = stop;
           latching), /control/reduced_speed (std_msgs/Bool: true caps the tool's commanded
           speed at the safety config's speed.reduced_tcp_limit, 0.25 m/s as ISO 10218-1's
           reduced speed; the arm decelerates to it within its limits).
Publishes  either /<controller>/joint_trajectory (one point per tick with position and velocity,
           header.stamp zero = "start now", for a ros2_control JointTrajectoryController) or
           /<controller>/commands (std_msgs/Float64MultiArray, forward position controller);
           optionally the gripper width on /<gripper_controller>/commands; /control/command
           (sensor_msgs/JointState, the filtered command in action order with its velocity,
           stamped with the tick time: what a recorder stores as the action); /safety/status
           (diagnostic_msgs/DiagnosticArray, 2 Hz and on every e-stop change).
Services   /safety/reset (std_srvs/Trigger): clear the e-stop; /control/enable
           (std_srvs/SetBool): true restarts from the measured state with no old chunks —
           needed whenever something else moved the arm (a sim reset, hand guiding) — and is
           refused (success false, the moving joint and its speed in the message) while any
           measured joint moves faster than `enable_max_speed`: the filter restarts at zero
           velocity, so enabling under a moving arm would step past its acceleration limit
           (`control_enable`). false stops sending commands at once, with no braking: the arm's
           controller (a JTC, sim_node's too) holds the last point, so a moving arm stops
           abruptly, as hard as that controller's gains make it, not within the filter's limits.
           To stop gently, brake first (/safety/e_stop, or no chunks until the watchdog's stop),
           wait for rest, then disable.
The loop runs in its own thread on the node clock: `runtime.control_loop.ControlLoop`, the one
`eval` and `bench loop` run, with the topics as its arm and its chunk source. Callbacks parse and
check messages in the executor's thread and only hand the results over under a lock, so no
message delays a tick; a chunk beyond the bounds (`max_chunk_points`, `max_chunk_lead`,
`max_chunk_duration`, `max_point_spacing`) is rejected, an oversized one by its byte count
before it is parsed. All the decisions are `runtime.Controller`'s.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_policy.nodes import common
from robot_policy.nodes.chunk_msgs import ChunkReader, ChunkRejected
from robot_policy.nodes.control_enable import MeasuredVelocity, enable_refusal
from robot_policy.nodes.control_status import control_status, headline
from robot_policy.nodes.parameters import CONTROL_NODE_UNUSED, ControlNodeParameters
from robot_policy.recent import RecentWindow
from robot_policy.robots import GRIPPER, load_robot
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.runtime.control_loop import ControlLoop, Observed
from robot_policy.runtime.controller import Controller
from robot_policy.runtime.rate_loop import RateLoop
from robot_policy.safety import SafetyConfig

STATUS_PERIOD = 0.5


class ControlNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("control_node", **kwargs)
        p = common.declare_parameters(self, ControlNodeParameters, exclude=CONTROL_NODE_UNUSED)
        self.parameters = p
        self.config = p.control()
        if p.safety_config:
            self.safety = SafetyConfig.from_yaml(p.safety_config)
            if self.safety.robot != p.robot:
                raise ValueError(
                    f"safety_config {p.safety_config} is for robot {self.safety.robot!r}, "
                    f"the node's robot is {p.robot!r}"
                )
        else:
            self.safety = SafetyConfig.for_robot(p.robot)
        self.robot = load_robot(p.robot)
        self.names = self.robot.command_names  # the policy's action order
        controller_joints = list(p.joints) or list(self.names)
        self.gripper_controller = p.gripper_controller
        expected = [n for n in self.names if not (self.gripper_controller and n == GRIPPER)]
        if sorted(controller_joints) != sorted(expected):
            raise ValueError(
                f"joints {controller_joints} must be a reordering of {expected} "
                "(the gripper goes to gripper_controller when that is set)"
            )
        self.output_order = [self.names.index(n) for n in controller_joints]
        self.controller_joints = controller_joints
        self.output = p.output
        self.send_velocities = p.send_velocities
        self._lock = threading.Lock()
        self._reduced_speed = p.reduced_speed
        self._new_controller()
        self._enabled = bool(p.autostart)
        self._state: dict[str, float] | None = None
        self._state_stamp = -math.inf
        self._state_received = -math.inf  # node-clock time the latest state arrived
        self._state_count = 0  # joint states received; the loop takes each one once
        self.velocity = MeasuredVelocity(self.robot)  # what /control/enable checks
        self.enable_max_speed = p.enable_max_speed
        self._given_count = 0
        self._chunks = {"accepted": 0, "ignored": 0, "rejected": 0, "overridden": 0, "teleop": 0}
        self.teleop_timeout = p.teleop_timeout
        self.chunk_reader = ChunkReader(self.names, p.chunk_limits())
        self._last_teleop = -math.inf
        self._last_rejection = ""
        self._tick_ms = RecentWindow()
        # Age of the measured state behind each command when it is sent (DDS + wait for the
        # tick + compute), and of each chunk's observation when the chunk arrives (inference).
        self._state_age_ms = RecentWindow()
        self._chunk_age_ms = RecentWindow()
        # [chunk stamp, time the first command computed with it went out], recent chunks.
        self.first_commands: deque[tuple[float, float]] = deque(maxlen=64)

        controller = p.controller
        if self.output == "joint_trajectory":
            self.command_pub = self.create_publisher(
                JointTrajectory, f"/{controller}/joint_trajectory", common.COMMAND_QOS
            )
        else:
            self.command_pub = self.create_publisher(
                Float64MultiArray, f"/{controller}/commands", common.COMMAND_QOS
            )
        self.gripper_pub = (
            self.create_publisher(
                Float64MultiArray, f"/{self.gripper_controller}/commands", common.COMMAND_QOS
            )
            if self.gripper_controller
            else None
        )
        self.status_pub = self.create_publisher(DiagnosticArray, "/safety/status", common.STATE_QOS)
        self.applied_pub = self.create_publisher(JointState, "/control/command", common.STATE_QOS)
        self.create_subscription(JointState, "/joint_states", self._on_state, common.SENSOR_QOS)
        # Chunks arrive serialized (raw), so an oversized one is refused by its byte count
        # before rclpy spends per-point Python work on it (see `ChunkReader`).
        self.create_subscription(
            JointTrajectory, p.chunk_topic, self._on_chunk, common.COMMAND_QOS, raw=True
        )
        if p.teleop_topic:
            self.create_subscription(
                JointTrajectory, p.teleop_topic, self._on_teleop_chunk, common.COMMAND_QOS, raw=True
            )
        self.create_subscription(Bool, "/safety/e_stop", self._on_e_stop, common.COMMAND_QOS)
        self.create_subscription(
            Bool, "/control/reduced_speed", self._on_reduced_speed, common.COMMAND_QOS
        )
        self.create_service(Trigger, "/safety/reset", self._on_reset)
        self.create_service(SetBool, "/control/enable", self._on_enable)
        self.create_timer(STATUS_PERIOD, self.publish_status)
        self._stop = threading.Event()
        self.loop = RateLoop(self.config.rate_hz)
        self._thread_priority = p.thread_priority
        self.callback_priority = max(p.thread_priority - 1, 0)  # node_main: states reach the loop
        self._realtime = False
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _new_controller(self) -> None:
        """A fresh controller and loop: no chunks, no commands, no measured state yet."""
        self.controller = Controller(
            self.names, self.safety.joint_limits(), self.config, safety=self.safety
        )
        self.controller.set_reduced_speed(self._reduced_speed)
        self._inbox: deque[TimedChunk] = deque()
        self.control = ControlLoop(self.controller, _TopicArm(self), _Inbox(self._inbox))

    # --- callbacks: hand data to the loop ---------------------------------------------------

    def _on_state(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            return  # a driver publishing names without positions: nothing usable
        with self._lock:
            self._state = dict(zip(msg.name, msg.position, strict=True))
            self._state_stamp = common.to_seconds(msg.header.stamp)
            self._state_count += 1
            self._state_received = self.now()
            self.velocity.update(msg.name, msg.position, msg.velocity, self._state_stamp)

    def _on_chunk(self, raw: bytes) -> None:
        self._take_chunk(raw, teleop=False)

    def _on_teleop_chunk(self, raw: bytes) -> None:
        self._take_chunk(raw, teleop=True)

    def teleop_active(self, now: float) -> bool:
        return now - self._last_teleop <= self.teleop_timeout

    def _take_chunk(self, raw: bytes, teleop: bool) -> None:
        now = self.now()
        try:
            # Bounded (size, lead, span, spacing) here, in the callback thread: one message
            # must neither stall the loop nor keep the arm moving long after its sender died.
            chunk = self.chunk_reader.read(raw, now)
        except ChunkRejected as exc:
            with self._lock:
                self._chunks["rejected"] += 1
                self._last_rejection = f"{'teleop' if teleop else 'policy'}: {exc}"
            self.get_logger().error(f"chunk rejected: {exc}")
            return
        with self._lock:
            if teleop:
                if not self.teleop_active(now):
                    # Take-over: the operator's command wins now, over queued chunks too.
                    self.controller.drop_chunks()
                    self._inbox.clear()
                self._last_teleop = now
                self._chunks["teleop"] += 1
            elif self.teleop_active(now):
                self._chunks["overridden"] += 1
                return
            self._inbox.append(chunk)  # the loop hands it to the controller at the next tick
            self._chunk_age_ms.add((now - chunk.stamp) * 1e3)

    def _on_e_stop(self, msg: Bool) -> None:
        if msg.data:
            with self._lock:
                self.controller.engage_e_stop("e_stop")
            self.get_logger().warning("e-stop engaged")
            self.publish_status()

    def _on_reduced_speed(self, msg: Bool) -> None:
        with self._lock:
            self._reduced_speed = bool(msg.data)
            self.controller.set_reduced_speed(self._reduced_speed)
        self.get_logger().info(f"reduced speed {'on' if msg.data else 'off'}")
        self.publish_status()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            was = self.controller.e_stopped
            self.controller.reset()
        response.success = True
        response.message = f"e-stop cleared (was: {was})" if was else "not e-stopped"
        self.publish_status()
        return response

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """true: restart from the measured state, refused while the arm moves (a refusal
        changes nothing: a running loop keeps following its chunks); false: stop commanding."""
        refusal = None
        with self._lock:
            if not request.data:
                self._enabled = False
            elif (
                refusal := enable_refusal(
                    self.velocity.velocity,
                    self.now() - self._state_received,
                    self.names,
                    self.enable_max_speed,
                )
            ) is None:
                # Restart from the arm's measured state: a fresh filter and no old chunks.
                e_stop = self.controller.e_stopped
                self._new_controller()
                if e_stop is not None:
                    self.controller.engage_e_stop(e_stop)  # enabling never clears an e-stop
                self._state = None  # wait for a state measured after this call
                self._enabled = True
        if refusal is not None:
            self.get_logger().warning(f"/control/enable true {refusal}")
        response.success = refusal is None
        response.message = refusal or ("enabled" if request.data else "disabled")
        return response

    # --- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        with common.realtime_thread(self, self._thread_priority, "control loop") as realtime:
            self._realtime = realtime
            self._ticks()

    def _ticks(self) -> None:
        while not self._stop.is_set():
            self.loop.wait()
            now = self.now()
            with self._lock:
                if not self._enabled:
                    continue
                polled = [chunk.stamp for chunk in self._inbox]
                # Published under the lock: once /control/enable(false) has answered, no
                # command computed before it can still go out.
                tick = self.control.step(now, self.loop.period)
                self._chunks["accepted"] += tick.chunks_accepted
                ignored = len(polled) - tick.chunks_accepted
                self._chunks["ignored"] += ignored
                state_stamp = self._state_stamp
                if tick.result is not None and polled and not ignored:  # which was, not known
                    sent = self.now()  # the command went out inside step
                    self.first_commands.extend((stamp, sent) for stamp in polled)
            if ignored:
                why = self.controller.scheduler.stats.last_ignored
                self.get_logger().warning(f"chunk ignored: {why}", throttle_duration_sec=1.0)
            if tick.result is not None:
                self._state_age_ms.add((self.now() - state_stamp) * 1e3)
                self._tick_ms.add(tick.work_s * 1e3)

    def measured(self) -> Observed | None:
        """The newest joint state not yet given to the loop, in action order (lock held)."""
        if self._state is None or self._state_count == self._given_count:
            return None
        self._given_count = self._state_count
        try:
            return Observed(self._state_stamp, self.robot.command_vector(self._state))
        except KeyError as exc:
            self._last_rejection = f"joint_states: {exc}"
            return None

    def publish(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        applied = JointState(name=self.names, position=command.tolist())
        applied.velocity = velocity.tolist()
        applied.header.stamp = common.to_stamp(now)
        self.applied_pub.publish(applied)
        arm = self.output_order
        if self.output == "joint_trajectory":
            msg = JointTrajectory(joint_names=self.controller_joints)
            point = JointTrajectoryPoint(positions=command[arm].tolist())
            if self.send_velocities:
                point.velocities = velocity[arm].tolist()
            period = self.loop.period
            point.time_from_start.sec = int(period)
            point.time_from_start.nanosec = int((period % 1.0) * 1e9)
            msg.points = [point]  # header.stamp stays zero: the JTC starts it on receipt
            self.command_pub.publish(msg)
        else:
            self.command_pub.publish(Float64MultiArray(data=command[arm].tolist()))
        if self.gripper_pub is not None:
            width = float(command[self.names.index(GRIPPER)])
            self.gripper_pub.publish(Float64MultiArray(data=[width]))

    def status(self) -> dict:
        """Everything an operator or a test needs to know about the loop and the filter."""
        return control_status(self)

    def publish_status(self) -> None:
        values = self.status()
        level, message = headline(values)
        self.status_pub.publish(
            common.diagnostics(self, "control_node: safety filter", level, message, values, "arm")
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class _TopicArm:
    """The loop's arm: /joint_states in, the controller's command topic out."""

    def __init__(self, node: ControlNode) -> None:
        self.node = node

    def observe(self) -> Observed | None:
        return self.node.measured()

    def send(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        self.node.publish(command, velocity, now)


class _Inbox:
    """The loop's chunk source: chunks the subscriptions checked and queued since last tick
    (policy_node paces its own requests, so a measurement asks for nothing here)."""

    def __init__(self, queue: deque[TimedChunk]) -> None:
        self.queue = queue

    def poll(self, now: float) -> list[TimedChunk]:
        chunks = list(self.queue)
        self.queue.clear()
        return chunks

    def observed(self, measured: Observed, controller: Controller, now: float) -> None:
        return None


main = common.node_main(ControlNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
