"""The gamepad device on a virtual joystick inside pygame's own SDL, headless (dummy video).

SDL (>= 2.0.14) can attach virtual joysticks; pygame does not expose that, so the test calls
the SDL library pygame loaded through ctypes. Everything after that is the real path: SDL
events, pygame's queue and joystick objects, the device's mapping.
"""

import ctypes
import os

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
pygame = pytest.importorskip("pygame")

from robot_policy.teleop.device import DeviceUnavailable, Event  # noqa: E402
from robot_policy.teleop.gamepad import (  # noqa: E402
    DeviceDisconnected,
    GamepadDevice,
    GamepadLayout,
)

LAYOUT = GamepadLayout()
SPEED, TURN = 0.2, 0.4
SDL_HAT_UP, SDL_HAT_RIGHT = 0x01, 0x02


def _loaded_sdl() -> ctypes.CDLL:
    """The SDL2 library pygame uses (its wheel bundles one), found among the mapped files."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libSDL2-2" in line or "libSDL2." in line}
    paths = {p for p in paths if "image" not in p and "mixer" not in p and "ttf" not in p}
    assert len(paths) == 1, paths
    sdl = ctypes.CDLL(paths.pop())
    sdl.SDL_JoystickOpen.restype = ctypes.c_void_p
    sdl.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    sdl.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    sdl.SDL_JoystickSetVirtualButton.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    sdl.SDL_JoystickSetVirtualHat.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    return sdl


class VirtualPad:
    """An Xbox-like pad: 6 axes (triggers on 2 and 5 rest at -1), 11 buttons, a D-pad."""

    def __init__(self) -> None:
        pygame.display.init()
        pygame.joystick.init()
        self.sdl = _loaded_sdl()
        self.index = self.sdl.SDL_JoystickAttachVirtual(0, 6, 11, 1)
        assert self.index >= 0, "SDL could not attach a virtual joystick"
        self.handle = self.sdl.SDL_JoystickOpen(self.index)
        for trigger in (2, 5):
            self.axis(trigger, -1.0)
        pygame.event.pump()

    def axis(self, index: int, value: float) -> None:
        raw = int(np.clip(round(value * 32767), -32768, 32767))
        assert self.sdl.SDL_JoystickSetVirtualAxis(self.handle, index, raw) == 0

    def button(self, index: int, down: bool) -> None:
        assert self.sdl.SDL_JoystickSetVirtualButton(self.handle, index, int(down)) == 0

    def hat(self, value: int) -> None:
        assert self.sdl.SDL_JoystickSetVirtualHat(self.handle, 0, value) == 0

    def tap(self, index: int) -> None:
        """Press and release between two device reads (SDL emits both events)."""
        self.button(index, True)
        pygame.event.pump()
        self.button(index, False)
        pygame.event.pump()

    def unplug(self) -> None:
        if self.handle:
            self.sdl.SDL_JoystickClose(self.handle)
            self.sdl.SDL_JoystickDetachVirtual(self.index)
            self.handle = None


@pytest.fixture
def pad():
    virtual = VirtualPad()
    device = GamepadDevice(virtual.index, linear_speed=SPEED, angular_speed=TURN)
    yield virtual, device
    device.close()
    virtual.unplug()
    pygame.quit()


def test_sticks_and_dpad_map_to_the_base_frame_twist(pad):
    virtual, device = pad
    virtual.button(LAYOUT.deadman, True)
    for setup, linear, angular in [
        (lambda: virtual.axis(LAYOUT.left_y, -1.0), [SPEED, 0, 0], [0, 0, 0]),  # stick up
        (lambda: virtual.axis(LAYOUT.left_x, -1.0), [0, SPEED, 0], [0, 0, 0]),  # stick left
        (lambda: virtual.axis(LAYOUT.right_y, 1.0), [0, 0, -SPEED], [0, 0, 0]),  # stick down
        (lambda: virtual.axis(LAYOUT.right_x, 1.0), [0, 0, 0], [0, 0, -TURN]),  # stick right
        (lambda: virtual.hat(SDL_HAT_UP), [0, 0, 0], [0, TURN, 0]),
        (lambda: virtual.hat(SDL_HAT_RIGHT), [0, 0, 0], [TURN, 0, 0]),
    ]:
        for axis in (0, 1, 3, 4):
            virtual.axis(axis, 0.0)
        virtual.hat(0)
        setup()
        command = device.read()
        assert command.enabled and not command.intervention
        np.testing.assert_allclose(command.linear, linear, atol=1e-4)
        np.testing.assert_allclose(command.angular, angular, atol=1e-4)


def test_deadman_released_gives_zero_twist(pad):
    virtual, device = pad
    virtual.axis(LAYOUT.left_y, -1.0)
    virtual.hat(SDL_HAT_UP)
    released = device.read()
    assert not released.enabled
    np.testing.assert_array_equal(released.twist, np.zeros(6))
    virtual.button(LAYOUT.deadman, True)
    assert device.read().linear[0] == pytest.approx(SPEED, abs=1e-4)
    virtual.button(LAYOUT.deadman, False)
    np.testing.assert_array_equal(device.read().twist, np.zeros(6))


def test_deadzone_and_rescaling(pad):
    virtual, device = pad
    virtual.button(LAYOUT.deadman, True)
    virtual.axis(LAYOUT.left_y, -0.08)  # resting drift of a worn stick
    assert not device.read().linear.any()
    virtual.axis(LAYOUT.left_y, -0.55)  # halfway between the deadzone (0.1) and full
    assert device.read().linear[0] == pytest.approx(SPEED / 2, abs=1e-3)


def test_take_over_is_held_and_enables(pad):
    virtual, device = pad
    virtual.axis(LAYOUT.left_x, 1.0)
    virtual.button(LAYOUT.take_over, True)
    taken = device.read()
    assert taken.intervention and taken.enabled
    assert taken.linear[1] == pytest.approx(-SPEED, abs=1e-4)
    virtual.button(LAYOUT.take_over, False)  # released: the policy resumes
    resumed = device.read()
    assert not resumed.intervention and not resumed.enabled


def test_taps_between_reads_are_not_lost(pad):
    virtual, device = pad
    assert device.read().gripper == 1.0
    virtual.tap(LAYOUT.gripper)
    assert device.read().gripper == 0.0
    virtual.tap(LAYOUT.record)
    assert device.read().events == {Event.RECORD}
    virtual.tap(LAYOUT.discard)
    virtual.tap(LAYOUT.quit)
    assert device.read().events == {Event.DISCARD, Event.QUIT}
    assert device.read().events == set()
    device.reset()
    assert device.read().gripper == 1.0


def test_unplugged_mid_session_stops(pad):
    virtual, device = pad
    virtual.unplug()
    with pytest.raises(DeviceDisconnected):
        device.read()


def test_missing_gamepad_is_a_clear_error():
    pygame.display.init()
    pygame.joystick.init()
    try:
        with pytest.raises(DeviceUnavailable, match="no gamepad"):
            GamepadDevice(pygame.joystick.get_count())
    finally:
        pygame.quit()
