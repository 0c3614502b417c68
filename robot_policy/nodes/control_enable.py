"""What control_node checks before `/control/enable true` restarts its filter: is the arm still?

A restart builds a fresh `Controller`, and its filter starts from the measured position at zero
velocity (`SafetyFilter.step` takes only a position from the state). Under a moving arm that is
a step of the arm's whole speed in one tick: 0.3 rad/s at 100 Hz is 30 rad/s², six times the
Panda's 5 rad/s² limit (config/safety/panda.yaml). So the restart is refused while any joint
moves faster than `enable_max_speed`, and the reply names the joint and its speed. Ramping from
the measured velocity instead was not chosen: the filter cannot be started from a velocity (nor
from the acceleration its jerk limit needs) without changing `SafetyFilter`; a measured velocity
is noisy and a few milliseconds old, so the seed would itself be a step; and a fresh controller
has no chunk, so the ramp would only be a brake, which the caller gets by braking (the e-stop,
or no chunks until the watchdog's stop) and waiting before it enables.

The velocity is the driver's own where /joint_states carries one per joint (sim_node and
ros2_control's joint_state_broadcaster do); otherwise it is estimated from successive positions
and their stamps. This module imports no rclpy, so it is tested without a ROS graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from robot_policy.robots import GRIPPER, RobotDescription

# s: an older joint state says nothing about how the arm moves now (drivers publish at 100 Hz
# or more), so enabling on it is refused as "speed unknown".
STATE_MAX_AGE = 0.5


class MeasuredVelocity:
    """The arm's newest measured velocity in action order (arm joints, gripper width rate)."""

    def __init__(self, robot: RobotDescription) -> None:
        self.robot = robot
        self.velocity: np.ndarray | None = None  # None: not known (yet)
        self._previous: tuple[float, np.ndarray] | None = None  # (stamp, positions) to estimate

    def update(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        stamp: float,
    ) -> None:
        """Take one /joint_states message's fields (`stamp` in seconds)."""
        try:
            if len(velocities) == len(names):
                # The driver's own velocity; the width rate is the sum of the fingers' rates,
                # as the width is the sum of their openings (`command_vector` is linear).
                self.velocity = self.robot.command_vector(dict(zip(names, velocities, strict=True)))
                return
            position = self.robot.command_vector(dict(zip(names, positions, strict=True)))
        except KeyError:  # a driver that lacks some joint: nothing known about the arm's speed
            self.velocity = None
            return
        previous = self._previous
        if previous is not None and not stamp > previous[0]:
            return  # a repeated or older stamp: no time passed to divide by
        self._previous = (stamp, position)
        if previous is not None:
            self.velocity = (position - previous[1]) / (stamp - previous[0])


def enable_refusal(
    velocity: np.ndarray | None, age: float, names: Sequence[str], max_speed: float
) -> str | None:
    """Why enabling must be refused now, or None: the arm is still (`velocity` in `names`'
    order, measured `age` seconds ago)."""
    if velocity is None:
        return "refused: no joint velocity measured yet, so the arm is not known to be still"
    if not age <= STATE_MAX_AGE:
        return (
            f"refused: the newest joint state is {age:.2f} s old (more than {STATE_MAX_AGE} s), "
            "so the arm is not known to be still"
        )
    speeds = np.abs(np.asarray(velocity, dtype=np.float64))
    if not all(map(math.isfinite, speeds.tolist())):
        return "refused: the measured joint velocity is not finite"
    k = int(np.argmax(speeds))
    if speeds[k] <= max_speed:
        return None
    unit = "m/s" if names[k] == GRIPPER else "rad/s"
    return (
        f"refused: the arm is moving ({names[k]} at {speeds[k]:.3f} {unit} measured, more "
        f"than enable_max_speed {max_speed:g}); the filter would restart at zero velocity, "
        "a step beyond its acceleration limit. Bring the arm to rest, then enable"
    )
