"""teleop_node: an operator's device as short action chunks for control_node.

Subscribes /joint_states (the measured arm: where the IK starts and what it is clamped to), and
           for the scripted device the environment-state topic (object poses by task field).
Publishes  /teleop/action_chunk (trajectory_msgs/JointTrajectory, control_node's teleop_topic):
           every tick while the operator drives, three points at the tick period: the last
           target, the new one, and the new one held. Its stamp is now + LEAD, so the first
           point is still fresh when it reaches the control loop, which then ramps between the
           targets at its own rate. Nothing goes to the arm directly: control_node's safety
           filter is the only way there.
           /teleop/joy (sensor_msgs/Joy, every tick): the device as read, stamped with the tick
           time: axes = twist (vx, vy, vz, wx, wy, wz) + gripper (0 closed .. 1 open),
           buttons = [enabled (deadman), intervention (take-over)]. recorder_node holds
           buttons[1] per frame as the `intervention` flag.
Services   /teleop/reset (std_srvs/Trigger): a new episode; the device (the scripted expert's
           plan, the gripper toggle) and the IK restart from the first joint state measured
           after the call (call it after /sim/reset).
Calls      /recorder/start, /recorder/stop, /recorder/discard when `episode_control` is on: the
           device's record button starts or stops (saves) an episode, discard drops it; which
           one record means comes from /recorder/status (recording or not).
"Drives" means: the deadman is held (`enabled`), or with `take_over` (a policy is running) the
take-over is on. Each time driving starts the IK restarts from the measured joints, because the
policy or the watchdog may have moved the arm since. The device's quit ends the node.
"""

from __future__ import annotations

import math

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_policy.nodes import common
from robot_policy.nodes.chunk_msgs import chunk_to_msg
from robot_policy.nodes.parameters import TeleopNodeParameters
from robot_policy.robots import load_robot
from robot_policy.runtime.chunks import TimedChunk
from robot_policy.teleop.device import DeviceUnavailable, Event, TeleopCommand
from robot_policy.teleop.ik import TwistIK
from robot_policy.teleop.registry import open_device

# Lead of a chunk's first point over its send time: a few control ticks (100 Hz) of transport
# and scheduling, so that point is not already stale when it arrives.
LEAD = 0.02
PRESS_TIMEOUT = 5.0  # s a record/discard press waits for the recorder's service to appear


class TeleopNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("teleop_node", **kwargs)
        p = common.declare_parameters(self, TeleopNodeParameters)
        self.robot = load_robot(p.robot)
        self.names = self.robot.command_names
        self.dt = 1.0 / p.rate_hz
        self.take_over = p.take_over
        self.episode_control = p.episode_control
        self.mirror = None
        if p.device == "scripted":
            from robot_policy.teleop.mirror import MirrorEnv

            self.mirror = MirrorEnv(p.task, p.rate_hz)
        try:
            self.device = open_device(p.device, self.mirror.env if self.mirror else None)
        except DeviceUnavailable as exc:
            self._close_mirror()
            raise SystemExit(f"teleop_node: {exc}") from exc
        self.get_logger().info(self.device.help)
        self.ik = TwistIK(self.robot, self.dt)
        self._joints: dict[str, float] | None = None
        self._joints_stamp = -math.inf
        self._environment: dict[str, float] = {}
        self._environment_stamp = -math.inf
        self._reset_after = -math.inf  # reset the device and IK once state newer than this came
        self._reset_pending = True
        self._driving = False
        self._last_target: np.ndarray | None = None
        self._recording = False  # as /recorder/status last said
        self._call_pending = False
        self._press: tuple[str, float] | None = None  # (recorder action, when pressed)

        self.chunk_pub = self.create_publisher(JointTrajectory, p.chunk_topic, common.COMMAND_QOS)
        self.joy_pub = self.create_publisher(Joy, "/teleop/joy", common.STATE_QOS)
        self.create_subscription(JointState, "/joint_states", self._on_joints, common.SENSOR_QOS)
        if self.mirror is not None:
            self.create_subscription(
                JointState, p.environment_topic, self._on_environment, common.SENSOR_QOS
            )
        self.create_service(Trigger, "/teleop/reset", self._on_reset)
        self.create_subscription(
            DiagnosticArray, "/recorder/status", self._on_recorder_status, common.STATE_QOS
        )
        # Responses from the recorder are handled while a tick may be running.
        responses = MutuallyExclusiveCallbackGroup()
        self.recorder = {
            e: self.create_client(Trigger, f"/recorder/{e}", callback_group=responses)
            for e in ("start", "stop", "discard")
        }
        self.create_timer(self.dt, self._tick)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joints(self, msg: JointState) -> None:
        if len(msg.name) == len(msg.position):
            self._joints = dict(zip(msg.name, msg.position, strict=True))
            self._joints_stamp = common.to_seconds(msg.header.stamp)

    def _on_environment(self, msg: JointState) -> None:
        if len(msg.name) == len(msg.position):
            self._environment = dict(zip(msg.name, msg.position, strict=True))
            self._environment_stamp = common.to_seconds(msg.header.stamp)

    def _on_recorder_status(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if kv.key == "recording":
                    self._recording = kv.value == "true"  # JSON

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_after = self.now()
        self._reset_pending = True
        response.success = True
        response.message = "device and IK restart from the next measured state"
        return response

    # --- the tick ---------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.now()
        joints = self._joints
        fresh = self._joints_stamp > self._reset_after and (
            self.mirror is None or self._environment_stamp > self._reset_after
        )
        if joints is None or not fresh:
            return  # nothing measured yet, or only from before a reset
        if self._reset_pending:
            self._driving = False
        try:
            measured = self.robot.command_vector(joints)
            arm = measured[: len(self.robot.arm)]
            if self.mirror is not None:
                # The scripted operator watches the hand where it commanded it (the IK
                # reference) and the objects where they are measured. Closing its 5/s position
                # loop on the measured hand instead, 0.1-0.3 s behind the command on a graph,
                # made it circle around targets.
                hand = self.ik.reference if self._driving else arm
                self.mirror.sync(hand, float(measured[-1]), self._environment)
        except KeyError as exc:
            self.get_logger().error(f"cannot operate: {exc}", throttle_duration_sec=1.0)
            return
        if self._reset_pending:
            self.device.reset()
            self._reset_pending = False
        command = self.device.read()
        self._publish_joy(command, now)
        if Event.QUIT in command.events:
            self.get_logger().info("quit pressed: teleop_node stops")
            rclpy.try_shutdown(context=self.context)
            return
        if self.episode_control:
            self._episode_events(command.events, now)
        driving = command.intervention if self.take_over else command.enabled
        if driving:
            if not self._driving:  # (re)start from where the arm is now
                self.ik.reset(arm)
                self._last_target = measured
            target = self.ik.step(command, arm)
            actions = np.stack([self._last_target, target, target])
            self.chunk_pub.publish(
                chunk_to_msg(TimedChunk(now + LEAD, self.dt, actions), self.names)
            )
            self._last_target = target
        self._driving = driving

    def _publish_joy(self, command: TeleopCommand, now: float) -> None:
        joy = Joy()
        joy.header.stamp = common.to_stamp(now)
        joy.axes = [float(v) for v in (*command.twist, command.gripper)]
        joy.buttons = [int(command.enabled), int(command.intervention)]
        self.joy_pub.publish(joy)

    def _episode_events(self, events: frozenset[Event], now: float) -> None:
        """Turn a press into a recorder call; a press made before the recorder's service is
        discovered waits for it (up to PRESS_TIMEOUT) instead of being lost."""
        if self._call_pending:
            return  # one request at a time; a press meanwhile is dropped, not queued
        if Event.DISCARD in events and self._recording:
            self._press = ("discard", now)
        elif Event.RECORD in events:
            self._press = ("stop" if self._recording else "start", now)
        if self._press is None:
            return
        action, pressed = self._press
        client = self.recorder[action]
        if not client.service_is_ready():
            if now - pressed > PRESS_TIMEOUT:
                self.get_logger().error(f"{client.srv_name} is not available: is recorder_node up?")
                self._press = None
            return
        self._press, self._call_pending = None, True
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda f: self._on_recorder(action, f))

    def _on_recorder(self, action: str, future) -> None:
        self._call_pending = False
        result = future.result()
        if result is None or not result.success:
            why = result.message if result is not None else "no answer"
            self.get_logger().error(f"/recorder/{action} refused: {why}")
        else:
            self.get_logger().info(f"/recorder/{action}: {result.message}")

    def _close_mirror(self) -> None:
        if self.mirror is not None:
            self.mirror.close()

    def close(self) -> None:
        self.device.close()
        self._close_mirror()


main = common.node_main(TeleopNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
