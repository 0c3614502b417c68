"""3Dconnexion SpaceMouse teleop through pyspacemouse (HID, no 3Dconnexion driver needed).

pyspacemouse talks HID through the hidapi C library, which pip cannot install: on Debian or
Ubuntu `apt install libhidapi-hidraw0`, and give the user read access to /dev/hidraw*
(3Dconnexion's vendor id is 256f; a udev rule with MODE="0666" does it). Without either,
opening the device fails with a message that says which is missing.

The library's ROS axis convention (x forward, y left, z up; roll, pitch, yaw about them) is
already the base frame `TeleopCommand` uses. The puck springs back to rest, so it is its own
deadman: motion is enabled only while it is deflected past the deadzone. Two buttons are all
the smallest models have: the left toggles the gripper, the right toggles take-over; episode
control comes from the terminal (`WithConsole`).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from robot_policy.teleop.device import (
    DEFAULT_ANGULAR_SPEED,
    DEFAULT_LINEAR_SPEED,
    Deadzone,
    DeviceUnavailable,
    HandDevice,
    TeleopCommand,
)

if TYPE_CHECKING:
    import pyspacemouse

AXES = ("x", "y", "z", "roll", "pitch", "yaw")
GRIPPER_BUTTON = 0
TAKE_OVER_BUTTON = 1
_MAX_REPORTS_PER_READ = 256  # the HID queue holds a few hundred ms of reports at most
HELP = (
    "spacemouse: push/tilt the puck to move · left button open/close gripper · "
    "right button take over on/off"
)


def open_spacemouse() -> pyspacemouse.SpaceMouseDevice:
    """Open the first connected SpaceMouse in the ROS axis convention, or say what is missing."""
    try:
        import pyspacemouse
    except ImportError as error:
        raise DeviceUnavailable(
            "SpaceMouse teleop needs pyspacemouse: pip install 'pyspacemouse>=2.1'"
        ) from error
    try:
        # pyspacemouse announces the device on stdout, where --json output goes.
        with contextlib.redirect_stdout(sys.stderr):
            return pyspacemouse.open(axis_convention=pyspacemouse.AxisConvention.ROS)
    except RuntimeError as error:
        raise DeviceUnavailable(
            f"no usable SpaceMouse ({error}). It needs the hidapi C library (Debian/Ubuntu: "
            "apt install libhidapi-hidraw0), a connected 3Dconnexion device, and read access to "
            "its /dev/hidraw* node"
        ) from error


class SpaceMouseDevice(HandDevice):
    """A SpaceMouse opened by pyspacemouse (`mouse`, default: the first one connected)."""

    help = HELP

    def __init__(
        self,
        mouse: pyspacemouse.SpaceMouseDevice | None = None,
        *,
        linear_speed: float = DEFAULT_LINEAR_SPEED,
        angular_speed: float = DEFAULT_ANGULAR_SPEED,
        deadzone: float = 0.05,
    ) -> None:
        self._deadzone = Deadzone(deadzone)
        self._mouse = mouse if mouse is not None else open_spacemouse()
        self._buttons = (0, 0)
        super().__init__(linear_speed, angular_speed)

    def _read(self) -> TeleopCommand:
        state, pressed = self._drain()
        if pressed[GRIPPER_BUTTON]:
            self._gripper = 1.0 - self._gripper
        if pressed[TAKE_OVER_BUTTON]:
            self._intervention = not self._intervention
        deflection = self._deadzone([getattr(state, axis) for axis in AXES])
        return self._command(deflection, bool(deflection.any()))

    def _drain(self) -> tuple[pyspacemouse.SpaceMouseState, list[bool]]:
        """The latest state, and which buttons went down since the last poll.

        Each library `read` consumes one HID report, and the device sends many more per second
        than a control loop polls: reading one per tick would fall further and further behind
        the puck. Presses are caught report by report, so a quick tap is not lost.
        """
        pressed = [False, False]
        state = self._mouse.read()
        for _ in range(_MAX_REPORTS_PER_READ):
            buttons = (*state.buttons[:2], 0, 0)[:2]
            pressed = [
                p or bool(b and not old)
                for p, b, old in zip(pressed, buttons, self._buttons, strict=True)
            ]
            self._buttons = buttons
            stamp = state.t
            state = self._mouse.read()
            if state.t == stamp:
                break
        return state, pressed

    def close(self) -> None:
        self._mouse.close()
