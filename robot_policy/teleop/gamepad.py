"""Gamepad teleop through pygame's joystick API (SDL2), headless.

SDL needs its video subsystem for the event queue, not for a window: the dummy video driver
is used, so the gamepad works over ssh and in CI. Held state (sticks, deadman) is polled from
the joystick; presses (toggles, episode events) come from JOYBUTTONDOWN events, so a tap
shorter than a control tick is never lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # its banner would corrupt --json output
import pygame  # noqa: E402

from robot_policy.teleop.device import (  # noqa: E402
    DEFAULT_ANGULAR_SPEED,
    DEFAULT_LINEAR_SPEED,
    Deadzone,
    DeviceUnavailable,
    Event,
    HandDevice,
    TeleopCommand,
)


@dataclass(frozen=True)
class GamepadLayout:
    """Axis, button and hat indices; the defaults are an Xbox-style pad on Linux (pygame docs).

    Stick axes read -1 at left/up and +1 at right/down. Other pads number things differently:
    pass a layout of their own.
    """

    left_x: int = 0
    left_y: int = 1
    right_x: int = 3
    right_y: int = 4
    gripper: int = 0  # A: open/close
    deadman: int = 4  # LB, held
    take_over: int = 5  # RB, held; also enables motion
    discard: int = 6  # Back
    record: int = 7  # Start
    quit: int = 10  # Guide
    hat: int = 0  # D-pad

    @property
    def buttons(self) -> int:
        """Buttons a pad needs at least."""
        return 1 + max(self.gripper, self.deadman, self.take_over, self.discard, self.record,
                       self.quit)  # fmt: skip


HELP = (
    "gamepad: hold LB (deadman) or RB (take over) to move · left stick forward/back, left/right "
    "· right stick up/down, yaw · D-pad roll, pitch · A open/close gripper\n"
    "episode: Start start/stop+save · Back discard · Guide quit"
)


class DeviceDisconnected(RuntimeError):
    """The gamepad went away mid-session; stop rather than guess what the operator wants."""


class GamepadDevice(HandDevice):
    """The `index`-th joystick SDL sees, mapped through `layout`."""

    help = HELP

    def __init__(
        self,
        index: int = 0,
        layout: GamepadLayout | None = None,
        *,
        linear_speed: float = DEFAULT_LINEAR_SPEED,
        angular_speed: float = DEFAULT_ANGULAR_SPEED,
        deadzone: float = 0.1,
    ) -> None:
        self._deadzone = Deadzone(deadzone)
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        pygame.display.init()
        pygame.joystick.init()
        count = pygame.joystick.get_count()
        if index >= count:
            raise DeviceUnavailable(
                f"no gamepad {index}: SDL sees {count} joystick(s); plug one in (and check "
                "read access to /dev/input/event*)"
            )
        self.layout = layout or GamepadLayout()
        self._joystick = pygame.joystick.Joystick(index)
        self._joystick.init()
        if self._joystick.get_numbuttons() < self.layout.buttons:
            self._joystick.quit()
            raise DeviceUnavailable(
                f"gamepad {self._joystick.get_name()!r} has {self._joystick.get_numbuttons()} "
                f"buttons; the layout needs {self.layout.buttons}"
            )
        self._id = self._joystick.get_instance_id()
        super().__init__(linear_speed, angular_speed)

    def _read(self) -> TeleopCommand:
        pressed: set[int] = set()
        for event in pygame.event.get():
            if getattr(event, "instance_id", None) != self._id:
                continue
            if event.type == pygame.JOYBUTTONDOWN:
                pressed.add(event.button)
            elif event.type == pygame.JOYDEVICEREMOVED:
                raise DeviceDisconnected(f"gamepad {self._joystick.get_name()!r} disconnected")
        layout, pad = self.layout, self._joystick
        if layout.gripper in pressed:
            self._gripper = 1.0 - self._gripper
        events = {
            event
            for button, event in (
                (layout.record, Event.RECORD),
                (layout.discard, Event.DISCARD),
                (layout.quit, Event.QUIT),
            )
            if button in pressed
        }
        take_over = bool(pad.get_button(layout.take_over))
        hat_x, hat_y = pad.get_hat(layout.hat) if pad.get_numhats() > layout.hat else (0, 0)
        axis = self._axis
        twist = np.array([
            -axis(layout.left_y),  # stick up: forward
            -axis(layout.left_x),  # stick left: left
            -axis(layout.right_y),  # stick up: up
            hat_x,  # D-pad right: roll
            hat_y,  # D-pad up: pitch
            -axis(layout.right_x),  # stick left: counter-clockwise seen from above
        ])  # fmt: skip
        enabled = take_over or bool(pad.get_button(layout.deadman))
        return self._command(twist, enabled, intervention=take_over, events=frozenset(events))

    def _axis(self, index: int) -> float:
        """Stick axis with the deadzone removed and the rest rescaled to reach ±1."""
        return float(self._deadzone(self._joystick.get_axis(index)))

    def close(self) -> None:
        if self._joystick.get_init():
            self._joystick.quit()
