"""Teleoperation devices and the loop that records their demonstrations.

Devices (the interface in `device.py`; keyboard, gamepad, spacemouse and scripted modules)
say what the operator wants as an end-effector twist; `TwistIK` turns it into joint targets for
the safety filter; `robot_policy.collect` records episodes without ROS. The device modules load
their libraries (pygame, pyspacemouse) only when imported or opened by name (`open_device`).
"""

from robot_policy.teleop.device import (
    DeviceUnavailable,
    Event,
    TeleopCommand,
    TeleopDevice,
    WithConsole,
)
from robot_policy.teleop.ik import TwistIK
from robot_policy.teleop.registry import DEVICES, open_device

__all__ = [
    "DEVICES",
    "DeviceUnavailable",
    "Event",
    "TeleopCommand",
    "TeleopDevice",
    "TwistIK",
    "WithConsole",
    "open_device",
]
