"""Every node's ROS parameters as one dataclass schema each: defaults, descriptions, ranges.

`nodes.common.declare_parameters(node, Schema)` declares the flattened fields and returns a
validated instance; the graph-file test, the launch-file checks and `effective_parameters`
(`robot-policy up --print-params`) read the same classes. This module imports no rclpy, so
those readers do not need a ROS install. Where a node's parameters are a core config the
schema extends it (control_node's rate, watchdog and scheduler are `ControlConfig`,
policy_node's inference set-up is `InferenceSettings`), so their defaults and descriptions
exist once.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_policy.policies.inference import InferenceSettings
from robot_policy.robots import DEFAULT_ROBOT, ROBOTS
from robot_policy.runtime.chunks import ChunkLimits
from robot_policy.runtime.controller import ControlConfig
from robot_policy.settings import Parameter, flatten, setting
from robot_policy.sim.camera import CAMERAS
from robot_policy.sim.tasks import TASKS
from robot_policy.teleop.registry import DEVICES

ROBOT_DESCRIPTION = "robot description name (robot_policy.robots)"


def robot_setting() -> str:
    return setting(DEFAULT_ROBOT, ROBOT_DESCRIPTION, choices=sorted(ROBOTS))


@dataclass(frozen=True)
class SimNodeParameters:
    robot: str = robot_setting()
    task: str = setting("push", "sim task", choices=TASKS)
    seed: int = setting(0, "seed of the first episode; the k-th reset uses seed + k", low=0)
    cameras: tuple[str, ...] = setting((), "cameras to publish", choices=tuple(CAMERAS))
    image_size: tuple[int, int] = setting((96, 96), "camera image [height, width]", low=1)
    camera_hz: float = setting(10.0, "camera frame rate (Hz)", low=0.01)
    state_hz: float = setting(
        240.0, "joint state rate (Hz); physics substeps per tick = 240 / state_hz", low=1.0
    )
    controller: str = setting(
        "arm_controller", "controller name: topics /<controller>/joint_trajectory, …"
    )
    sim_config: str = setting(
        "", "path of a sim YAML (randomization, episode lengths); '' = defaults"
    )
    allow_nonzero_velocity_at_trajectory_end: bool = setting(
        True, "as the JTC parameter; true suits streaming single-point trajectories"
    )
    thread_priority: int = setting(
        50,
        "SCHED_FIFO priority of the physics thread, which stands in for the arm's own "
        "hardware (its callbacks run one below); 0 = normal scheduling",
        low=0,
        high=99,
    )


@dataclass(frozen=True)
class PerceptionNodeParameters:
    source: str = setting(
        "topic",
        "'topic': subscribe to /camera/<camera_name>/image_raw; otherwise an OpenCV source: "
        "a device index ('0'), a video file path, or a stream URL",
    )
    camera_name: str = setting("front", "camera name in the topic names /camera/<camera_name>/…")
    output_size: tuple[int, int] = setting(
        (96, 96), "published image [height, width]: the policy's image_size", low=1
    )
    crop: tuple[int, ...] = setting(
        (),
        "[x, y, width, height] of the undistorted input to keep; [] = the largest centred "
        "box with the output's aspect ratio",
        low=0,
    )
    calibration_file: str = setting(
        "", "camera_calibration or CameraInfo YAML to undistort with; '' = no undistortion"
    )
    publish_rate: float = setting(
        0.0, "Hz at which an OpenCV source is read and published; 0 = its own frame rate", low=0.0
    )
    frame_id: str = setting("", "header.frame_id for OpenCV sources; '' = <camera_name>_camera")


@dataclass(frozen=True)
class PolicyNodeParameters(InferenceSettings):
    """`InferenceSettings` (device, precision, threads, inference_steps: the set-up `eval` and
    `bench` use) plus the wiring."""

    robot: str = robot_setting()
    checkpoint: str = setting(
        "", "checkpoint folder (backend lerobot: a pretrained_model folder); '' = shipped push_flow"
    )
    backend: str = setting(
        "robot_policy",
        "robot_policy (our checkpoints) or lerobot (a LeRobot policy, run in LeRobot's own "
        "Python: make lerobot-env)",
        choices=("robot_policy", "lerobot"),
    )
    lerobot_python: str = setting(
        "", "backend lerobot: its interpreter; '' = $ROBOT_POLICY_LEROBOT_PYTHON or .venv-lerobot"
    )
    fps: int = setting(
        0,
        "backend lerobot: the policy's rate; 0 = its training dataset's (train_config.json)",
        low=0,
    )
    replan_period: float = setting(
        0.0, "s between inference requests; 0 = n_action_steps / fps", low=0.0
    )
    chunk_topic: str = setting("/policy/action_chunk", "where chunks are published")
    environment_topic: str = setting(
        "/sim/environment_state", "observation.environment_state source"
    )
    image_topic: str = setting(
        "/camera/{name}/image_raw", "image topic per camera; {name} is replaced"
    )
    inference_priority: int = setting(
        40,
        "SCHED_FIFO priority of the inference process, below control_node's loop (50); "
        "0 = normal scheduling (refused without CAP_SYS_NICE or rtprio: reported, runs normal)",
        low=0,
        high=99,
    )
    latency_floor: float = setting(
        0.0,
        "s: every chunk takes at least this long, to rehearse a slower computer; 0 = off",
        low=0.0,
    )


@dataclass(frozen=True)
class ControlNodeParameters(ControlConfig):
    """`ControlConfig` (rate_hz, hold_timeout, stop_timeout, scheduler.*) plus the wiring."""

    robot: str = robot_setting()
    thread_priority: int = setting(
        50,
        "SCHED_FIFO priority of the loop thread, as ros2_control's; its callbacks run one "
        "below; 0 = normal scheduling (refused without CAP_SYS_NICE or rtprio: reported)",
        low=0,
        high=99,
    )
    output: str = setting(
        "joint_trajectory",
        "joint_trajectory (JTC) or commands (forward controller)",
        choices=("joint_trajectory", "commands"),
    )
    controller: str = setting(
        "arm_controller", "arm controller name: /<controller>/joint_trajectory|commands"
    )
    joints: tuple[str, ...] = setting(
        (), "controller joints in its order; [] = the robot's (arm joints + gripper)"
    )
    gripper_controller: str = setting(
        "", "if set, the gripper width goes to /<this>/commands instead"
    )
    send_velocities: bool = setting(True, "JTC output: add the filter's velocity to each point")
    chunk_topic: str = setting("/policy/action_chunk", "where chunks arrive")
    teleop_topic: str = setting(
        "/teleop/action_chunk",
        "operator chunks; while they keep coming they override the policy ('' = none)",
    )
    teleop_timeout: float = setting(
        0.2, "s after the last operator chunk before the policy may resume", low=0.0
    )
    autostart: bool = setting(True, "start commanding once the first joint state arrives")
    enable_max_speed: float = setting(
        0.05,
        "rad/s (m/s for the gripper width): /control/enable true is refused while any measured "
        "joint moves faster, as the filter restarts at zero velocity; keep it <= acceleration "
        "/ rate_hz (0.05 = 5 rad/s² / 100 Hz) so the restart's velocity step stays in one tick's "
        "acceleration limit",
        low=0.0,
    )
    reduced_speed: bool = setting(
        False,
        "start in reduced-speed mode (ISO 10218-1): the tool's commanded speed capped at the "
        "safety config's speed.reduced_tcp_limit; /control/reduced_speed switches it live",
    )
    safety_config: str = setting(
        "",
        "safety YAML (limits, workspace box, obstacles, energy tank; see config/safety/); "
        "'' = config/safety/<robot>.yaml",
    )

    # Bounds on every chunk that arrives (policy and teleop alike); see `ChunkLimits`.
    max_chunk_lead: float = setting(
        ChunkLimits.max_lead,
        "s a chunk's first action may lie ahead of the node clock (more: rejected; it would "
        "otherwise block every later chunk as out of order)",
        low=0.0,
    )
    max_chunk_duration: float = setting(
        ChunkLimits.max_duration,
        "s one chunk may cover (points x spacing): how long it can move the arm after its "
        "sender dies",
        low=0.01,
    )
    max_point_spacing: float = setting(
        ChunkLimits.max_point_spacing,
        "s between a chunk's points (policy 0.1, teleop_node 1 / its rate_hz: it needs "
        "rate_hz >= 1 / this)",
        low=0.001,
    )
    max_chunk_points: int = setting(
        ChunkLimits.max_points, "points in one chunk; bigger ones are refused unparsed", low=1
    )

    def control(self) -> ControlConfig:
        """The core config alone (what `Controller` and `eval` use)."""
        return ControlConfig(self.rate_hz, self.hold_timeout, self.stop_timeout, self.scheduler)

    def chunk_limits(self) -> ChunkLimits:
        """The bounds `chunk_msgs` applies to each arriving chunk."""
        return ChunkLimits(
            self.max_chunk_lead,
            self.max_chunk_duration,
            self.max_point_spacing,
            self.max_chunk_points,
        )


# SchedulerConfig fields that do nothing in control_node: policy_node paces replanning, and
# the delay estimate serves policy-side real-time chunking only.
CONTROL_NODE_UNUSED = (
    "scheduler.n_action_steps",
    "scheduler.delay_window",
    "scheduler.delay_quantile",
)


@dataclass(frozen=True)
class TeleopNodeParameters:
    robot: str = robot_setting()
    device: str = setting("keyboard", "teleop device", choices=DEVICES)
    rate_hz: float = setting(
        10.0, "device polling and chunk rate (scripted: a whole divisor of 240)", low=0.01
    )
    task: str = setting("push", "scripted device: the sim task whose expert drives", choices=TASKS)
    take_over: bool = setting(
        False, "a policy drives: send chunks only while the device's take-over is on"
    )
    episode_control: bool = setting(
        True, "record/discard buttons call /recorder/start|stop|discard"
    )
    chunk_topic: str = setting(
        "/teleop/action_chunk", "where operator chunks go (control_node teleop_topic)"
    )
    environment_topic: str = setting(
        "/sim/environment_state", "scripted device: object poses by name"
    )


@dataclass(frozen=True)
class RecorderNodeParameters:
    robot: str = robot_setting()
    root: str = setting("", "dataset folder: created, or appended to (same fps and features)")
    fps: int = setting(10, "dataset frame rate; every topic is resampled to it by timestamp", low=1)
    task_text: str = setting("", "the instruction stored with every frame (LeRobot's task string)")
    cameras: tuple[str, ...] = setting((), "cameras to record, e.g. [front, wrist]")
    image_topic: str = setting(
        "/camera/{name}/image_raw", "image topic per camera; {name} is replaced"
    )
    environment_topic: str = setting(
        "/sim/environment_state", "observation.environment_state ('' = none)"
    )
    action_topic: str = setting("/control/command", "the filtered command (sensor_msgs/JointState)")
    intervention_topic: str = setting(
        "", "sensor_msgs/Joy whose buttons[1] is the take-over ('' = none)"
    )
    video_codec: str = setting("libsvtav1", "PyAV encoder for camera videos")
    stop_wait: float = setting(0.5, "s a stop waits for every topic to pass the stop time", low=0.0)


# Node executable -> (schema, parameters the node does not declare).
@dataclass(frozen=True)
class VizNodeParameters:
    robot: str = robot_setting()
    viewer: str = setting("rerun", "rerun or foxglove", choices=("rerun", "foxglove"))
    save: str = setting(
        "", "rerun: an .rrd file instead of a spawned viewer; foxglove: also record an MCAP"
    )
    port: int = setting(8765, "foxglove: the WebSocket server's port (0 = none)", low=0)
    cameras: tuple[str, ...] = setting((), "cameras to show, e.g. [front, wrist]")
    image_topic: str = setting(
        "/camera/{name}/image_raw", "image topic per camera; {name} is replaced"
    )
    chunk_topic: str = setting("/policy/action_chunk", "the chunks shown as a planned path")
    rate_hz: float = setting(
        30.0,
        "joint states and commands shown at most this often (they come at 100-240 Hz)",
        low=1.0,
    )


SCHEMAS: dict[str, tuple[type, tuple[str, ...]]] = {
    "sim_node": (SimNodeParameters, ()),
    "perception_node": (PerceptionNodeParameters, ()),
    "policy_node": (PolicyNodeParameters, ()),
    "control_node": (ControlNodeParameters, CONTROL_NODE_UNUSED),
    "teleop_node": (TeleopNodeParameters, ()),
    "recorder_node": (RecorderNodeParameters, ()),
    "viz_node": (VizNodeParameters, ()),
}


def declared(node: str) -> list[Parameter]:
    """The parameters `node` declares, flattened (dotted names for nested settings)."""
    schema, unused = SCHEMAS[node]
    return [p for p in flatten(schema) if p.name not in unused]
