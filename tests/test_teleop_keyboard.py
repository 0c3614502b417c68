"""The keyboard device on a real pseudo-terminal: what a person types over ssh, byte for byte."""

import os
import pty
import termios

import numpy as np
import pytest

from robot_policy.teleop.device import DeviceUnavailable, Event
from robot_policy.teleop.keyboard import DEFAULT_HOLD_S, KeyboardDevice

SPEED, TURN = 0.1, 0.5


class Clock:
    """Seconds set by the test, so the hold timeout is exercised without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def terminal():
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


@pytest.fixture
def keyboard(terminal):
    master, slave = terminal
    clock = Clock()
    device = KeyboardDevice(slave, linear_speed=SPEED, angular_speed=TURN, clock=clock)
    yield device, (lambda keys: os.write(master, keys.encode())), clock
    device.close()


def test_motion_keys_map_to_the_base_frame_twist(keyboard):
    device, type_, _ = keyboard
    for keys, linear, angular in [
        ("w", [SPEED, 0, 0], [0, 0, 0]),
        ("d", [0, -SPEED, 0], [0, 0, 0]),
        ("r", [0, 0, SPEED], [0, 0, 0]),
        ("c", [0, 0, 0], [0, 0, TURN]),
        ("x", [0, 0, 0], [-TURN, 0, 0]),
        ("t", [0, 0, 0], [0, TURN, 0]),
    ]:
        device.reset()
        type_(keys)
        command = device.read()
        assert command.enabled, keys
        np.testing.assert_allclose(command.linear, linear, err_msg=keys)
        np.testing.assert_allclose(command.angular, angular, err_msg=keys)


def test_keys_combine_and_shift_does_not_matter(keyboard):
    device, type_, _ = keyboard
    type_("WA")
    np.testing.assert_allclose(device.read().linear, [SPEED, SPEED, 0])


def test_released_key_stops_the_arm_after_the_hold_time(keyboard):
    device, type_, clock = keyboard
    type_("w")
    assert device.read().enabled
    clock.now = DEFAULT_HOLD_S * 0.9  # auto-repeat has not arrived yet: still held
    assert device.read().linear[0] == SPEED
    clock.now = DEFAULT_HOLD_S * 1.1  # no repeat: the key was let go
    released = device.read()
    assert not released.enabled
    np.testing.assert_array_equal(released.twist, np.zeros(6))
    type_("w")  # auto-repeat keeps it alive
    assert device.read().enabled


def test_arrow_keys_are_not_letters(keyboard):
    device, type_, _ = keyboard
    type_("\x1b[A\x1b[D\x1bOA")  # up, left (CSI), up (SS3): 'A'/'D' must not read as a/d
    command = device.read()
    assert not command.enabled and not command.events


def test_gripper_take_over_and_episode_keys(keyboard):
    device, type_, _ = keyboard
    assert device.read().gripper == 1.0
    type_(" ")
    assert device.read().gripper == 0.0
    type_("i")
    taken = device.read()
    assert taken.intervention and not taken.enabled  # a toggle, not motion
    type_("i")
    assert not device.read().intervention
    type_("\n")
    assert device.read().events == {Event.RECORD}
    type_("\x7fq")
    assert device.read().events == {Event.DISCARD, Event.QUIT}
    assert device.read().events == set()  # one press, one event
    device.reset()  # a new episode: the env opened the gripper again
    assert device.read().gripper == 1.0


def test_console_mode_hears_only_episode_keys(terminal):
    master, slave = terminal
    with KeyboardDevice(slave, motion=False) as console:
        os.write(master, b"w i\n")
        command = console.read()
    assert not command.enabled and not command.intervention and command.gripper == 1.0
    assert command.events == {Event.RECORD}


def test_terminal_is_raw_while_open_and_restored_after(terminal):
    _, slave = terminal
    lflag, cooked = 3, termios.ECHO | termios.ICANON
    assert termios.tcgetattr(slave)[lflag] & cooked == cooked
    device = KeyboardDevice(slave)
    assert termios.tcgetattr(slave)[lflag] & cooked == 0
    assert termios.tcgetattr(slave)[lflag] & termios.ISIG  # Ctrl-C still interrupts
    device.close()
    assert termios.tcgetattr(slave)[lflag] & cooked == cooked


def test_not_a_terminal_is_a_clear_error():
    read, write = os.pipe()
    try:
        with pytest.raises(DeviceUnavailable, match="terminal"):
            KeyboardDevice(read)
    finally:
        os.close(read)
        os.close(write)
