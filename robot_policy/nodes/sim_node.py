"""sim_node: a PyBullet arm that speaks what a ros2_control arm speaks.

Publishes  /joint_states (sensor_msgs/JointState, arm + finger joints, reliable like
           joint_state_broadcaster), /sim/environment_state (sensor_msgs/JointState whose names
           are the task's object-state fields, e.g. cube.x; the stamped, named vector a pose
           tracker would provide on a real cell), /camera/<name>/image_raw (sensor_msgs/Image,
           best effort), /sim/status (diagnostic_msgs/DiagnosticArray, 1 Hz).
Accepts    /<controller>/joint_trajectory (trajectory_msgs/JointTrajectory, JTC rules — see
           robot_policy.sim.trajectory) and /<controller>/commands (std_msgs/Float64MultiArray,
           forward position controller). Controller joints: the robot's arm joints + gripper
           (width, m).
Services   /sim/reset (std_srvs/Trigger): next episode, seeded seed + k for the k-th reset, like
           `robot-policy eval` without ROS (commands arriving in the next RESET_SETTLE s were sent
           for the previous episode and are dropped); /sim/success (std_srvs/Trigger): success =
           whether the task has been solved at any time this episode, message = JSON details.
Physics runs in its own thread at `physics_hz` on the wall clock (the sim waits for nobody, as
a real arm would not); stamps are the node clock's time of each state. That thread stands in
for the arm's own controller, which never shares a CPU with the policy computer's desktop, so
it runs on SCHED_FIFO (`thread_priority`) when permitted: physics that falls behind under load
would be a slower robot, not a busy computer.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_policy.nodes import common
from robot_policy.nodes.images import image_to_msg
from robot_policy.nodes.parameters import SimNodeParameters
from robot_policy.runtime.rate_loop import RateLoop
from robot_policy.sim import SimConfig
from robot_policy.sim.arm import SimArm
from robot_policy.sim.scene import PHYSICS_HZ
from robot_policy.sim.trajectory import TrajectoryRejected

# s after /sim/reset during which arriving commands are dropped as the previous episode's.
RESET_SETTLE = 0.05
MAX_CATCH_UP = 24  # physics substeps (0.1 s) per tick at most; beyond that, time is dropped


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim_node", **kwargs)
        p = common.declare_parameters(self, SimNodeParameters)
        cameras = list(p.cameras)
        sim_config = SimConfig.from_yaml(Path(p.sim_config)) if p.sim_config else None
        state_hz = p.state_hz
        substeps = PHYSICS_HZ / state_hz
        if substeps != round(substeps) or substeps < 1:
            raise ValueError(f"state_hz must divide {PHYSICS_HZ}, got {state_hz}")
        self.substeps = int(substeps)
        self.arm = SimArm(
            p.task,
            cameras=cameras,
            image_size=p.image_size,
            sim_config=sim_config,
            allow_nonzero_end_velocity=p.allow_nonzero_velocity_at_trajectory_end,
            robot=p.robot,
        )
        self.seed = p.seed
        self.cameras = cameras
        self.camera_period = 1.0 / p.camera_hz
        self.state_hz = state_hz
        self.thread_priority = p.thread_priority
        self.callback_priority = max(p.thread_priority - 1, 0)  # node_main: commands arrive
        self.realtime = False
        self._lock = threading.Lock()
        self._counts = {"trajectories": 0, "commands": 0, "rejected": 0, "dropped_after_reset": 0}
        self._reset_time = -math.inf
        self._last_rejection = ""
        self._lost_steps = 0  # physics substeps dropped because a tick came far too late
        self.arm.reset(self.seed)

        controller = p.controller
        self.state_pub = self.create_publisher(JointState, "/joint_states", common.STATE_QOS)
        self.env_pub = self.create_publisher(JointState, "/sim/environment_state", common.STATE_QOS)
        self.image_pubs = {
            c: self.create_publisher(Image, f"/camera/{c}/image_raw", common.SENSOR_QOS)
            for c in cameras
        }
        self.status_pub = self.create_publisher(DiagnosticArray, "/sim/status", common.STATE_QOS)
        self.create_subscription(
            JointTrajectory,
            f"/{controller}/joint_trajectory",
            self._on_trajectory,
            common.COMMAND_QOS,
        )
        self.create_subscription(
            Float64MultiArray, f"/{controller}/commands", self._on_commands, common.COMMAND_QOS
        )
        self.create_service(Trigger, "/sim/reset", self._on_reset)
        self.create_service(Trigger, "/sim/success", self._on_success)
        self.create_timer(1.0, self._publish_status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._physics_loop, name="sim-physics", daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _physics_loop(self) -> None:
        """Physics keeps pace with the clock: each tick steps as many 240 Hz substeps as the
        time since the start calls for (a tick delayed by a busy CPU is caught up, up to
        MAX_CATCH_UP), so simulated time does not fall behind the wall clock the policy and the
        controller run on — a real arm does not slow down for a slow computer either."""
        with common.realtime_thread(self, self.thread_priority, "physics") as realtime:
            self.realtime = realtime
            self._step_physics()

    def _step_physics(self) -> None:
        loop = RateLoop(self.state_hz)
        next_frame = 0.0
        start: float | None = None
        done = 0
        while not self._stop.is_set():
            loop.wait()
            now = self.now()
            if start is None:
                start = now - self.substeps * self.arm.physics_dt
            due = int((now - start) / self.arm.physics_dt) - done
            steps = min(max(due, 0), MAX_CATCH_UP)
            self._lost_steps += due - steps
            done += due
            with self._lock:
                self.arm.advance(steps, now)
                positions, velocities = self.arm.joint_state()
                env_state = self.arm.environment_state()
                frames = {}
                if self.cameras and now >= next_frame:
                    next_frame = now + self.camera_period
                    frames = {c: self.arm.render(c) for c in self.cameras}
            stamp = self.get_clock().now().to_msg()
            state = JointState(name=self.arm.state_joint_names)
            state.header.stamp = stamp
            state.position = positions.tolist()
            state.velocity = velocities.tolist()
            self.state_pub.publish(state)
            env = JointState(name=self.arm.environment_names, position=env_state.tolist())
            env.header.stamp = stamp
            self.env_pub.publish(env)
            for name, frame in frames.items():
                self.image_pubs[name].publish(image_to_msg(frame, stamp, f"{name}_camera"))
        self.loop_stats = loop.stats()

    def _after_reset(self) -> bool:
        """Whether a command arrived within RESET_SETTLE of a reset: it was computed for the
        previous episode (in flight while the referee reset the world) and would drag the arm
        back toward where that episode left it, so it is dropped and counted."""
        if self.now() - self._reset_time < RESET_SETTLE:
            self._counts["dropped_after_reset"] += 1
            return True
        return False

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        positions = [list(pt.positions) for pt in msg.points]
        velocities = [list(pt.velocities) for pt in msg.points]
        times = [common.to_seconds(pt.time_from_start) for pt in msg.points]
        with self._lock:
            if self._after_reset():
                return
            try:
                stamp = common.to_seconds(msg.header.stamp)
                self.arm.accept_trajectory(
                    msg.joint_names, stamp, times, positions, velocities, now=self.now()
                )
                self._counts["trajectories"] += 1
            except TrajectoryRejected as exc:
                self._reject(f"trajectory rejected: {exc}")

    def _on_commands(self, msg: Float64MultiArray) -> None:
        with self._lock:
            if self._after_reset():
                return
            try:
                self.arm.accept_positions(msg.data)
                self._counts["commands"] += 1
            except ValueError as exc:
                self._reject(f"command rejected: {exc}")

    def _reject(self, reason: str) -> None:
        self._counts["rejected"] += 1
        self._last_rejection = reason
        self.get_logger().error(reason)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            seed = self.seed + self.arm.episode + 1
            self.arm.reset(seed)
            self._reset_time = self.now()
        response.success = True
        response.message = json.dumps({"episode": self.arm.episode, "seed": seed})
        return response

    def _on_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            response.success = self.arm.succeeded
            response.message = json.dumps(
                {"episode": self.arm.episode, "seed": self.seed + self.arm.episode}
            )
        return response

    def _publish_status(self) -> None:
        with self._lock:
            values = {**self._counts, "last_rejection": self._last_rejection}
            values["episode"] = self.arm.episode
            values["lost_physics_steps"] = self._lost_steps
            values["realtime"] = self.realtime
            values["succeeded"] = self.arm.succeeded
        self.status_pub.publish(
            common.diagnostics(self, "sim_node", DiagnosticStatus.OK, "running", values, "pybullet")
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            self.arm.close()


main = common.node_main(SimNode)

if __name__ == "__main__":
    raise SystemExit(main(None))
