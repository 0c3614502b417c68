"""Keyboard teleop in a plain terminal: works over ssh, needs no display and no X/evdev access.

The terminal is put in cbreak mode (keys arrive one by one, unechoed; Ctrl-C still interrupts)
and polled with select, so `read` never blocks. A terminal reports key presses but never key
releases, so "held" means "pressed within the last `hold_s` seconds": auto-repeat keeps a held
key alive, and the arm stops at most `hold_s` after the key is let go. That timeout is the
keyboard's deadman. Take-over is a toggle for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import termios
import time
import tty
from collections.abc import Callable

import numpy as np

from robot_policy.teleop.device import (
    DEFAULT_ANGULAR_SPEED,
    DEFAULT_LINEAR_SPEED,
    DeviceUnavailable,
    Event,
    HandDevice,
    TeleopCommand,
)

# key -> (index into the twist (vx, vy, vz, wx, wy, wz), sign); robosuite's layout.
MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0),  # forward / back
    "a": (1, 1.0), "d": (1, -1.0),  # left / right
    "r": (2, 1.0), "f": (2, -1.0),  # up / down
    "z": (3, 1.0), "x": (3, -1.0),  # roll
    "t": (4, 1.0), "g": (4, -1.0),  # pitch
    "c": (5, 1.0), "v": (5, -1.0),  # yaw
}  # fmt: skip
GRIPPER_KEY = " "
TAKE_OVER_KEY = "i"
EVENT_KEYS: dict[str, Event] = {
    "\n": Event.RECORD,
    "\r": Event.RECORD,
    "\x7f": Event.DISCARD,  # Backspace (DEL on most terminals, BS on some)
    "\x08": Event.DISCARD,
    "q": Event.QUIT,
}
# Arrow and function keys arrive as escape sequences whose letters must not count as keys.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)?", re.DOTALL)
DEFAULT_HOLD_S = 0.3
EPISODE_HELP = "episode: Enter start/stop+save · Backspace discard · q quit"
MOTION_HELP = (
    "keyboard: w/s forward/back · a/d left/right · r/f up/down · z/x roll · t/g pitch · "
    "c/v yaw · Space open/close gripper · i take over on/off"
)


class KeyboardDevice(HandDevice):
    """Reads keys from the terminal on `fd` (default: stdin).

    With `motion=False` only the episode keys count: the terminal is a console for another
    device (see `WithConsole`).
    """

    def __init__(
        self,
        fd: int | None = None,
        *,
        motion: bool = True,
        linear_speed: float = DEFAULT_LINEAR_SPEED,
        angular_speed: float = DEFAULT_ANGULAR_SPEED,
        hold_s: float = DEFAULT_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if hold_s <= 0:
            raise ValueError(f"hold_s must be positive, got {hold_s}")
        self.fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(self.fd):
            raise DeviceUnavailable(
                "teleop keys (motion, or record/discard/quit) are read from a terminal, but "
                "this input is not one: run it in an interactive shell, not through a pipe"
            )
        self.motion = motion
        self.help = f"{MOTION_HELP}\n{EPISODE_HELP}" if motion else EPISODE_HELP
        super().__init__(linear_speed, angular_speed)
        self._hold_s = hold_s
        self._clock = clock
        self._pressed: dict[str, float] = {}  # motion key -> time of its last press
        self.reset()
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def reset(self) -> None:
        self._pressed.clear()
        super().reset()

    def _read(self) -> TeleopCommand:
        now = self._clock()
        events: set[Event] = set()
        for key in self._drain():
            if key in EVENT_KEYS:
                events.add(EVENT_KEYS[key])
            elif not self.motion:
                continue
            elif key in MOTION_KEYS:
                self._pressed[key] = now
            elif key == GRIPPER_KEY:
                self._gripper = 1.0 - self._gripper
            elif key == TAKE_OVER_KEY:
                self._intervention = not self._intervention
        twist = np.zeros(6)
        for key, pressed_at in self._pressed.items():
            if now - pressed_at <= self._hold_s:
                axis, sign = MOTION_KEYS[key]
                twist[axis] += sign
        return self._command(np.clip(twist, -1.0, 1.0), events=frozenset(events))

    def _drain(self) -> str:
        """Every key typed since the last poll, escape sequences removed, letters lower-cased.

        End of input (the terminal went away) reads as `q`, so a session cannot spin on it.
        """
        chunks = []
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 1024)
            if not data:
                chunks.append("q")
                break
            chunks.append(data.decode(errors="ignore"))
        return _ESCAPE_SEQUENCE.sub("", "".join(chunks)).lower()

    def close(self) -> None:
        """Put the terminal back as it was (echo, line editing)."""
        if self._saved is not None:
            with contextlib.suppress(termios.error):  # the terminal hung up: nothing to restore
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
