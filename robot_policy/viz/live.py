"""A running graph, live, in the field's viewers: Rerun, or Foxglove (WebSocket and MCAP).

viz_node (nodes/viz_node.py) turns topics into calls here, stamped with the message's own time:
joint states (the robot model moves), the filtered command, each camera frame, the current
action chunk as the end-effector's planned path (forward kinematics of every point), and the
numbers of /safety/status and /policy/status (filter interventions, loop timing, inference
latency). Nothing here imports rclpy. Both viewers are optional dependencies (the `viz` extra:
rerun-sdk, foxglove-sdk); a missing one is a clear error at start, not at the first message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy.data.rerun_viz import log_robot_model, viz_module
from robot_policy.robots.description import RobotDescription
from robot_policy.robots.kinematics import Kinematics

VIEWERS = ("rerun", "foxglove")
FRAME = "world"  # the robot's base stands at the world origin in our cells


class LiveView:
    """What viz_node calls; `stamp` is seconds on the graph's clock (the message header's)."""

    def __init__(self, robot: RobotDescription) -> None:
        self.robot = robot
        self._kinematics = Kinematics(robot)

    def planned_path(self, positions: np.ndarray) -> np.ndarray:
        """End-effector positions (N, 3) of a chunk's points (N, arm joints + gripper)."""
        arm = len(self.robot.arm_joint_names)
        return np.array([self._kinematics.ee_position(p[:arm]) for p in positions])

    def joints(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        raise NotImplementedError

    def command(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        raise NotImplementedError

    def chunk(self, stamp: float, positions: np.ndarray) -> None:
        raise NotImplementedError

    def image(self, stamp: float, camera: str, rgb: np.ndarray) -> None:
        raise NotImplementedError

    def values(self, stamp: float, group: str, values: Mapping[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RerunView(LiveView):
    """Into a Rerun viewer spawned here, or an .rrd file (`save`) to open later."""

    def __init__(self, robot: RobotDescription, save: str | Path | None = None) -> None:
        super().__init__(robot)
        rr = self._rr = viz_module("rerun")
        self._rec = rr.RecordingStream("robot_policy", recording_id="live")
        if save:
            self._rec.save(str(save))
        else:
            self._rec.spawn()
        tree = log_robot_model(rr, self._rec, robot)
        self._urdf_joints = {j.name: j for j in tree.joints()}

    def _at(self, stamp: float) -> None:
        self._rec.set_time("time", timestamp=stamp)

    def joints(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        self._at(stamp)
        for name, value in zip(names, positions, strict=True):
            if (joint := self._urdf_joints.get(name)) is not None:
                self._rec.log(f"robot/joints/{name}", joint.compute_transform(value, clamp=False))
            self._rec.log(f"joint_states/{name}", self._rr.Scalars(value))

    def command(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        self._at(stamp)
        for name, value in zip(names, positions, strict=True):
            self._rec.log(f"command/{name}", self._rr.Scalars(value))

    def chunk(self, stamp: float, positions: np.ndarray) -> None:
        self._at(stamp)
        path = self.planned_path(positions)
        self._rec.log("chunk/planned_path", self._rr.LineStrips3D([path], radii=0.003))
        self._rec.log("chunk/points", self._rr.Points3D(path, radii=0.006))

    def image(self, stamp: float, camera: str, rgb: np.ndarray) -> None:
        self._at(stamp)
        self._rec.log(f"cameras/{camera}", self._rr.Image(rgb))

    def values(self, stamp: float, group: str, values: Mapping[str, float]) -> None:
        self._at(stamp)
        for key, value in values.items():
            self._rec.log(f"{group}/{key}", self._rr.Scalars(value))

    def close(self) -> None:
        self._rec.flush()
        self._rec.disconnect()


class FoxgloveView(LiveView):
    """To Foxglove: a WebSocket server (`port`; Foxglove connects to ws://host:port) and/or an
    MCAP file (`mcap`) that Foxglove opens, with Foxglove's own schemas."""

    def __init__(
        self, robot: RobotDescription, mcap: str | Path | None = None, port: int | None = 8765
    ) -> None:
        super().__init__(robot)
        fg = self._fg = viz_module("foxglove")
        from foxglove import channels

        self._server = fg.start_server(name="robot_policy", port=port) if port else None
        self._mcap = fg.open_mcap(str(mcap), allow_overwrite=True) if mcap else None
        self._joints = channels.JointStatesChannel("/joint_states")
        self._command = channels.JointStatesChannel("/control/command")
        self._chunk = channels.SceneUpdateChannel("/policy/planned_path")
        self._images: dict[str, Any] = {}
        self._values: dict[str, Any] = {}
        self._channels = channels

    def _time(self, stamp: float) -> Any:
        sec = int(stamp)
        return self._fg.messages.Timestamp(sec=sec, nsec=int(round((stamp - sec) * 1e9)))

    def _ns(self, stamp: float) -> int:
        return int(round(stamp * 1e9))

    def _joint_states(self, channel: Any, stamp: float, names, positions) -> None:
        m = self._fg.messages
        joints = [
            m.JointState(name=n, position=float(p)) for n, p in zip(names, positions, strict=True)
        ]
        channel.log(
            m.JointStates(timestamp=self._time(stamp), joints=joints), log_time=self._ns(stamp)
        )

    def joints(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        self._joint_states(self._joints, stamp, names, positions)

    def command(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        self._joint_states(self._command, stamp, names, positions)

    def chunk(self, stamp: float, positions: np.ndarray) -> None:
        m = self._fg.messages
        points = [
            m.Point3(x=float(x), y=float(y), z=float(z)) for x, y, z in self.planned_path(positions)
        ]
        blue = m.Color(r=0.1, g=0.6, b=1.0, a=1.0)
        line = m.LinePrimitive(
            type=m.LinePrimitiveLineType.LineStrip, thickness=0.005, points=points, color=blue
        )
        entity = m.SceneEntity(
            timestamp=self._time(stamp), frame_id=FRAME, id="chunk", lines=[line]
        )
        self._chunk.log(m.SceneUpdate(entities=[entity]), log_time=self._ns(stamp))

    def image(self, stamp: float, camera: str, rgb: np.ndarray) -> None:
        m = self._fg.messages
        channel = self._images.setdefault(
            camera, self._channels.RawImageChannel(f"/camera/{camera}/image_raw")
        )
        height, width = rgb.shape[:2]
        msg = m.RawImage(timestamp=self._time(stamp), frame_id=camera, width=width,
                         height=height, encoding="rgb8", step=3 * width,
                         data=np.ascontiguousarray(rgb).tobytes())  # fmt: skip
        channel.log(msg, log_time=self._ns(stamp))

    def values(self, stamp: float, group: str, values: Mapping[str, float]) -> None:
        channel = self._values.get(group)
        if channel is None:
            channel = self._values[group] = self._fg.Channel(f"/{group}", message_encoding="json")
        channel.log({key: float(v) for key, v in values.items()}, log_time=self._ns(stamp))

    def close(self) -> None:
        if self._mcap is not None:
            self._mcap.close()
        if self._server is not None:
            self._server.stop()


def open_view(viewer: str, robot: RobotDescription, save: str = "", port: int = 8765) -> LiveView:
    """`viewer` rerun (save: an .rrd, else a spawned viewer) or foxglove (save: an MCAP, and a
    WebSocket server on `port` unless it is 0)."""
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
    if viewer == "rerun":
        return RerunView(robot, save or None)
    if viewer == "foxglove":
        return FoxgloveView(robot, save or None, port or None)
    raise ValueError(f"viewer is one of {VIEWERS}, got {viewer!r}")
