"""What every teleop device says, once per control tick: an end-effector twist and the buttons.

Frames: linear velocity (m/s) and angular velocity (rad/s, about the base axes through the end
effector) are in the robot's base frame, with the operator standing behind the base looking
along +x: "forward" is +x, "left" is +y, "up" is +z. Every device maps its sticks and keys to
that one frame, so the IK and everything after it are device-agnostic.

The deadman rule lives here, in `TeleopDevice.read`, so no device can forget it: a command that
is not `enabled` carries a zero twist. The gripper command is a state (the opening last asked
for), so it is kept while the arm is disabled.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import numpy as np

DEFAULT_LINEAR_SPEED = 0.15  # m/s at full deflection; ISO 10218-1 reduced speed is 0.25
DEFAULT_ANGULAR_SPEED = 0.6  # rad/s at full deflection


class DeviceUnavailable(RuntimeError):
    """The device cannot be used here; the message says what to install, plug in or run in."""


class Event(enum.Enum):
    """One-shot operator requests (a key or button press, not a held state)."""

    RECORD = "record"  # start recording, or stop and save the episode being recorded
    DISCARD = "discard"  # drop the episode being recorded
    QUIT = "quit"  # end the session


@dataclass(frozen=True)
class TeleopCommand:
    """One tick of operator intent.

    `gripper` is the opening asked for as a fraction of the hand's range (0 closed, 1 open).
    `intervention` is the take-over state: true while the operator, not the policy, drives;
    a recorder marks frames with it and a rollout hands control back when it clears.
    """

    linear: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gripper: float = 1.0
    enabled: bool = False
    intervention: bool = False
    events: frozenset[Event] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("linear", "angular"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (3,) or not np.isfinite(value).all():
                raise ValueError(f"{name} must be 3 finite numbers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        if not 0.0 <= self.gripper <= 1.0:
            raise ValueError(f"gripper must be in [0, 1], got {self.gripper}")

    @property
    def twist(self) -> np.ndarray:
        """(vx, vy, vz, wx, wy, wz): the order of the IK's Jacobian rows."""
        return np.concatenate([self.linear, self.angular])


class TeleopDevice(ABC):
    """A source of `TeleopCommand`s, polled once per control tick without blocking.

    Use as a context manager or call `close()`: devices hold terminals and HID handles that
    must be given back (a terminal left in cbreak mode is unusable).
    """

    #: Controls, shown to the operator when a session starts.
    help: str = ""

    def read(self) -> TeleopCommand:
        """The operator's command now; a zero twist unless the deadman is held."""
        command = self._read()
        if command.enabled:
            return command
        return replace(command, linear=np.zeros(3), angular=np.zeros(3))

    @abstractmethod
    def _read(self) -> TeleopCommand:
        """Poll the hardware and map it to a command (the deadman is applied by `read`)."""

    @abstractmethod
    def reset(self) -> None:
        """A new episode starts (the env was just reset, the gripper is open again): toggles
        go back to their start (gripper open, take-over off), scripted plans start over."""

    @abstractmethod
    def close(self) -> None:
        """Give the hardware back."""

    def __enter__(self) -> TeleopDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HandDevice(TeleopDevice):
    """A device a person moves: stick, key or puck deflections, each in [-1, 1] along the twist
    (vx, vy, vz, wx, wy, wz), scaled to `linear_speed` / `angular_speed` at full deflection,
    and the toggles (gripper open/closed, take-over on/off) that `reset` sets back."""

    def __init__(
        self,
        linear_speed: float = DEFAULT_LINEAR_SPEED,
        angular_speed: float = DEFAULT_ANGULAR_SPEED,
    ) -> None:
        self._scale = np.array([linear_speed] * 3 + [angular_speed] * 3)
        HandDevice.reset(self)

    def reset(self) -> None:
        self._gripper = 1.0
        self._intervention = False

    def _command(
        self,
        deflection: np.ndarray,
        enabled: bool | None = None,
        intervention: bool | None = None,
        events: frozenset[Event] = frozenset(),
    ) -> TeleopCommand:
        """The command for `deflection` with the gripper as toggled; `enabled` defaults to
        whether the twist moves at all, `intervention` to the take-over toggle."""
        twist = np.asarray(deflection, dtype=np.float64) * self._scale
        return TeleopCommand(
            linear=twist[:3],
            angular=twist[3:],
            gripper=self._gripper,
            enabled=bool(twist.any()) if enabled is None else enabled,
            intervention=self._intervention if intervention is None else intervention,
            events=events,
        )


@dataclass(frozen=True)
class Deadzone:
    """Deflections (each in [-1, 1] after clipping) with the `width` around rest read as 0 and
    the rest rescaled to still reach ±1: sensor noise at rest moves nothing."""

    width: float

    def __post_init__(self) -> None:
        if not 0 <= self.width < 1:
            raise ValueError(f"deadzone must be in [0, 1), got {self.width}")

    def __call__(self, values: np.ndarray | float) -> np.ndarray:
        raw = np.clip(values, -1.0, 1.0)
        magnitude = np.maximum(np.abs(raw) - self.width, 0.0) / (1.0 - self.width)
        return np.copysign(magnitude, raw)


class WithConsole(TeleopDevice):
    """`device` for motion and buttons, plus the episode events of a second `console` device.

    For devices with too few buttons for episode control (a two-button SpaceMouse): the
    terminal's keyboard supplies record/discard/quit while the device drives.
    """

    def __init__(self, device: TeleopDevice, console: TeleopDevice) -> None:
        self.device, self.console = device, console
        self.help = f"{device.help}\n{console.help}"

    def _read(self) -> TeleopCommand:
        command = self.device.read()
        extra = self.console.read().events
        return replace(command, events=command.events | extra) if extra else command

    def reset(self) -> None:
        self.device.reset()
        self.console.reset()

    def close(self) -> None:
        try:
            self.device.close()
        finally:
            self.console.close()
