"""Teleop devices by name, as `robot-policy collect --teleop NAME` and config files name them.

Each device module is imported only when asked for: pygame and the HID stack load in tens of
milliseconds to seconds, and a keyboard session needs neither.
"""

from __future__ import annotations

import gymnasium as gym

from robot_policy.teleop.device import TeleopDevice, WithConsole

DEVICES = ("keyboard", "gamepad", "spacemouse", "scripted")


def open_device(name: str, env: gym.Env) -> TeleopDevice:
    """Open the device called `name` for operating `env` (only the scripted one reads it)."""
    if name == "keyboard":
        from robot_policy.teleop.keyboard import KeyboardDevice

        return KeyboardDevice()
    if name == "gamepad":
        from robot_policy.teleop.gamepad import GamepadDevice

        return GamepadDevice()
    if name == "spacemouse":
        from robot_policy.teleop.keyboard import KeyboardDevice
        from robot_policy.teleop.spacemouse import SpaceMouseDevice

        console = KeyboardDevice(motion=False)  # the terminal first: it fails fast and cheaply
        try:
            return WithConsole(SpaceMouseDevice(), console)
        except BaseException:
            console.close()
            raise
    if name == "scripted":
        from robot_policy.teleop.scripted import ScriptedDevice

        return ScriptedDevice(env)
    raise ValueError(f"unknown teleop device {name!r}; choose one of {DEVICES}")
