"""The whole teleop path closed-loop in sim: device -> TwistIK -> SafetyFilter -> ArmEnv."""

import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from robot_policy.collect import collect_teleop
from robot_policy.data import LeRobotDataset
from robot_policy.robots import load_robot
from robot_policy.safety import SafetyFilter, SafetyLimits
from robot_policy.sim import SimConfig
from robot_policy.sim.tasks import SUCCESS_DISTANCE
from robot_policy.teleop.device import TeleopCommand, TeleopDevice
from robot_policy.teleop.ik import TwistIK
from robot_policy.teleop.keyboard import KeyboardDevice
from robot_policy.teleop.registry import open_device
from robot_policy.teleop.scripted import ScriptedDevice


def test_scripted_device_reaches_through_ik_and_safety_filter():
    env = SimConfig().make_env("reach")
    robot, dt = env.unwrapped.robot, 1.0 / env.unwrapped.fps
    names = env.unwrapped.features["action"]["names"]
    limits = SafetyLimits.from_robot(robot)
    device = ScriptedDevice(env)
    distances = []
    ik = TwistIK(robot, dt)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        device.reset()
        ik.reset(obs["observation.state"][:7])
        guard = SafetyFilter(limits, names, dt)
        for tick in range(env.unwrapped.max_episode_steps):
            target = ik.step(device.read(), obs["observation.state"][:7])
            guard.feed(tick * dt)
            sent = guard.step(target, obs["observation.state"], tick * dt).command
            obs, _, _, truncated, _ = env.step(sent.astype(np.float32))
        # The episode ran to its step limit: the gripper must have got there and stayed.
        ee, goal = np.split(obs["observation.environment_state"], 2)
        distances.append(float(np.linalg.norm(ee - goal)))
    env.close()
    assert truncated
    assert max(distances) < SUCCESS_DISTANCE / 2, distances


def test_collect_with_the_scripted_device_records_filtered_solved_episodes(tmp_path):
    result = collect_teleop(
        "reach", 3, tmp_path / "ds", ScriptedDevice, seed=4, realtime=False, status=None
    )
    assert result.attempted == 3 and result.episodes == 3 and result.success_rate == 1.0
    dataset = LeRobotDataset(tmp_path / "ds")
    limits = SafetyLimits.from_robot(load_robot())
    max_step = np.array(limits.velocity) * 0.1  # 10 Hz
    for k in range(3):
        episode = dataset.episode(k)
        ee, goal = np.split(episode["observation.environment_state"][-1], 2)
        assert np.linalg.norm(ee - goal) < SUCCESS_DISTANCE
        # Recorded actions are what the safety filter let through: within its velocity limit.
        steps = np.abs(np.diff(episode["action"], axis=0))
        assert np.all(steps <= max_step + 1e-5)
    assert result.frames == sum(len(dataset.episode(k)["action"]) for k in range(3))


class Typist(TeleopDevice):
    """A person at a terminal: types `script[tick]` into the pty before each keyboard poll.

    The keyboard device itself is the real one, reading the pty; only the timing is scripted
    (one control tick = 0.1 s on the device's clock, so the loop need not run in real time).
    """

    def __init__(self, script: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.script, self.tick = list(script), 0
        self.keyboard = KeyboardDevice(slave, clock=lambda: self.tick * 0.1)
        self.help = self.keyboard.help

    def _read(self) -> TeleopCommand:
        if self.tick < len(self.script) and self.script[self.tick]:
            os.write(self.master, self.script[self.tick].encode())
        self.tick += 1
        return self.keyboard.read()

    def reset(self) -> None:
        self.keyboard.reset()

    def close(self) -> None:
        self.keyboard.close()
        os.close(self.master)
        os.close(self.keyboard.fd)


def test_keyboard_session_records_saves_discards_and_quits(tmp_path):
    drive = ["w"] * 12 + [" "] + [""] * 4  # forward 1.2 s, close the gripper, let it settle
    script = (
        ["", "", "\n"] + drive + ["\n"]  # idle, record, drive, stop and save
        + ["\n", "w", "a", "\x7f"]  # second episode: record, move, discard
        + ["", "q"]  # third: quit before recording
    )  # fmt: skip
    result = collect_teleop(
        "reach",
        5,
        tmp_path / "ds",
        lambda env: Typist(script),
        keep_failed=True,
        realtime=False,
        status=None,
    )
    assert (result.attempted, result.episodes) == (2, 1)
    episode = LeRobotDataset(tmp_path / "ds").episode(0)
    assert len(episode["action"]) == 1 + len(drive)  # from the tick record was pressed on
    ee = episode["observation.environment_state"][:, :3]
    travelled = ee[-1] - ee[0]
    assert travelled[0] > 0.1  # 1.2 s at 0.15 m/s, less the time to get going
    assert np.abs(travelled[1:]).max() < 0.02  # straight ahead, no drift sideways or down
    assert episode["action"][-1, 7] < 0.01  # the gripper was closed
    assert episode["observation.state"][0, 7] > 0.07  # ... from open


def test_cli_keyboard_without_a_terminal_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "robot_policy", "collect", "--task", "reach", "--episodes", "1",
         "--out", str(tmp_path / "ds"), "--teleop", "keyboard"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "terminal" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_action_noise_is_for_the_scripted_expert_only(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "robot_policy", "collect", "--task", "reach", "--episodes", "1",
         "--out", str(tmp_path / "ds"), "--teleop", "gamepad", "--action-noise", "0.01"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "--action-noise" in proc.stderr


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown teleop device 'joystick'"):
        open_device("joystick", None)
    with pytest.raises(ValueError, match="max_seconds"):
        collect_teleop("reach", 1, tmp_path / "ds", ScriptedDevice, max_seconds=0)
    with pytest.raises(ValueError, match="episodes"):
        collect_teleop("reach", 0, tmp_path / "ds", ScriptedDevice)
