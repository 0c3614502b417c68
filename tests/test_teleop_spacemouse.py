"""The SpaceMouse device on pyspacemouse's own device object, fed raw HID reports.

No SpaceMouse is plugged in here, so the library's device runs unattached and the test hands
its HID parser the reports a SpaceMouse Compact sends (channel 1: translation, 2: rotation,
3: buttons; little-endian int16, ±350 at full deflection). That pins the physical directions:
pushing the puck away from the operator must move the arm forward (+x).
"""

import os
import pty
import struct

import numpy as np
import pytest

pyspacemouse = pytest.importorskip("pyspacemouse")

from robot_policy.teleop.device import DeviceUnavailable, Event, WithConsole  # noqa: E402
from robot_policy.teleop.keyboard import KeyboardDevice  # noqa: E402
from robot_policy.teleop.spacemouse import SpaceMouseDevice, open_spacemouse  # noqa: E402

SPEED, TURN = 0.1, 0.5
FULL = 350


def _report(channel: int, a: int = 0, b: int = 0, c: int = 0) -> bytes:
    return bytes([channel]) + struct.pack("<hhh", a, b, c)


@pytest.fixture
def puck():
    spec = pyspacemouse.apply_axis_convention(
        pyspacemouse.get_device_specs()["SpaceMouseCompact"], pyspacemouse.AxisConvention.ROS
    )
    mouse = pyspacemouse.SpaceMouseDevice(info=spec)
    device = SpaceMouseDevice(mouse, linear_speed=SPEED, angular_speed=TURN, deadzone=0.1)

    def send(*reports: bytes) -> None:
        for report in reports:
            mouse._process(report)  # the library's parser, as if the report came over USB

    yield device, send
    device.close()


def test_physical_directions_map_to_the_base_frame(puck):
    device, send = puck
    for reports, linear, angular in [
        ([_report(1, b=-FULL)], [SPEED, 0, 0], [0, 0, 0]),  # push away: forward
        ([_report(1, a=FULL)], [0, -SPEED, 0], [0, 0, 0]),  # push right: right
        ([_report(1, c=-FULL)], [0, 0, SPEED], [0, 0, 0]),  # pull up: up
        ([_report(2, c=FULL)], [0, 0, 0], [0, 0, -TURN]),  # twist clockwise seen from above
    ]:
        send(_report(1), _report(2), *reports)
        command = device.read()
        assert command.enabled
        np.testing.assert_allclose(command.linear, linear, atol=1e-9)
        np.testing.assert_allclose(command.angular, angular, atol=1e-9)


def test_puck_at_rest_is_the_deadman(puck):
    device, send = puck
    send(_report(1, a=20, b=-30), _report(2, c=15))  # sensor noise inside the deadzone
    rest = device.read()
    assert not rest.enabled
    np.testing.assert_array_equal(rest.twist, np.zeros(6))
    send(_report(1, b=-FULL // 2))
    half = device.read()  # 0.5 deflection, deadzone 0.1: (0.5 - 0.1) / 0.9 of full speed
    assert half.linear[0] == pytest.approx(SPEED * 0.4 / 0.9, rel=1e-3)


def test_buttons_toggle_gripper_and_take_over_on_press(puck):
    device, send = puck
    left, right, none = bytes([3, 1, 0]), bytes([3, 2, 0]), bytes([3, 0, 0])
    send(left)
    assert device.read().gripper == 0.0
    send(none)
    assert device.read().gripper == 0.0  # released: no second toggle
    send(right)
    assert device.read().intervention
    assert device.read().intervention  # still held: no second toggle
    send(none)
    assert device.read().intervention  # a toggle: released, the operator still drives
    send(right)
    assert not device.read().intervention
    device.reset()
    assert device.read().gripper == 1.0


def test_terminal_console_supplies_the_episode_keys(puck):
    """`--teleop spacemouse`: the puck drives, the terminal starts and stops episodes."""
    device, send = puck
    master, slave = pty.openpty()
    try:
        combined = WithConsole(device, KeyboardDevice(slave, motion=False))
        send(_report(1, b=-FULL))
        os.write(master, b"w\n")  # 'w' is no motion key on a console
        command = combined.read()
        assert command.events == {Event.RECORD}
        np.testing.assert_allclose(command.linear, [SPEED, 0, 0], atol=1e-9)
        os.write(master, b"\x7f")
        assert combined.read().events == {Event.DISCARD}
        combined.console.close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_library_or_device_is_a_clear_error():
    # This machine has either no hidapi library or no SpaceMouse; both must say what to do.
    with pytest.raises(DeviceUnavailable, match="SpaceMouse.*hidapi"):
        open_spacemouse()
