"""`robot-policy collect --ros`: episodes recorded through the ROS 2 graph (device ->
teleop_node -> control_node's safety filter -> sim_node, recorder_node writing), by the scripted
device into a dataset that trains, and by a person typing on a terminal.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import numpy as np
import rclpy
from conftest import wait_for
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, Joy
from test_ros_graph import latest_status

from robot_policy.data import LeRobotDataset, describe
from robot_policy.graph.recording import RECORD_GRAPH
from robot_policy.graph.runner import parameter_arguments
from robot_policy.nodes.common import STATE_QOS
from robot_policy.policies.checkpoint import load_policy
from robot_policy.robots import load_robot
from robot_policy.sim.tasks import SUCCESS_DISTANCE, TASK_SPECS

EPISODES = 5


def robot_policy(*args: str, timeout: float) -> dict:
    """Run the command as a user would; its --json result."""
    done = subprocess.run(
        [sys.executable, "-m", "robot_policy", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_scripted_teleop_records_five_episodes_through_the_graph_and_a_policy_trains_on_them(
    tmp_path, probe
):
    # Every command control_node sends (deep queue: none may be missed on a busy machine).
    # Best effort: the probe must not add a reliable reader's acknowledgements to the loop's
    # publisher. It may lose a sample, so a few recorded actions may be missing from what it saw.
    everything = QoSProfile(depth=10000, reliability=ReliabilityPolicy.BEST_EFFORT)
    probe.watch(JointState, "/control/command", everything)
    root = tmp_path / "reach-ros"
    result = robot_policy(
        "collect", "--ros", "--teleop", "scripted", "--task", "reach",
        "--episodes", str(EPISODES), "--out", str(root), "--seed", "3",
        timeout=300,
    )  # fmt: skip
    assert result["attempted"] == EPISODES and result["episodes"] == EPISODES, result
    dataset = LeRobotDataset(root)
    assert describe(root)["episodes"] == EPISODES
    assert dataset.fps == 10 and dataset.num_frames == result["frames"]
    assert set(dataset.features) >= {"observation.state", "observation.environment_state"}
    home = np.array(load_robot().home)
    # Each recorded action is a command control_node sent after its safety filter, exactly.
    sent = {tuple(np.float32(m.position)) for m in probe.messages("/control/command")}
    for k in range(EPISODES):
        episode = dataset.episode(k)
        np.testing.assert_allclose(episode["observation.state"][0, :7], home, atol=0.02)
        seen = np.mean([tuple(action) in sent for action in episode["action"]])
        assert seen >= 0.95, (k, seen)  # a pre-filter action would match none
        ee, goal = np.split(episode["observation.environment_state"][-1], 2)
        assert np.linalg.norm(ee - goal) < SUCCESS_DISTANCE, k
        assert dataset.episodes[k]["tasks"] == [TASK_SPECS["reach"].description]

    checkpoint = tmp_path / "ckpt"
    trained = robot_policy(
        "train", "--dataset", str(root), "--policy", "flow", "--out", str(checkpoint),
        "--steps", "20", "--batch-size", "16", "--threads", "1", "--device", "cpu",
        timeout=300,
    )  # fmt: skip
    assert np.isfinite(trained["final_loss"]), trained
    policy = load_policy(checkpoint)
    assert policy.config.action_dim == 8


def test_a_person_records_with_the_keyboard_through_the_graph(tmp_path, probe):
    """`collect --ros --teleop keyboard` on a terminal: Enter starts and saves, q ends it all.
    The probe watches the recorder on the session's isolated DDS domain."""
    probe.watch(DiagnosticArray, "/recorder/status", STATE_QOS)
    probe.watch(Joy, "/teleop/joy", STATE_QOS)  # teleop_node reads the device
    probe.watch(DiagnosticArray, "/sim/status", STATE_QOS)
    root = tmp_path / "typed"
    terminal, operator_side = pty.openpty()
    session = subprocess.Popen(
        [sys.executable, "-m", "robot_policy", "collect", "--ros", "--teleop", "keyboard",
         "--task", "reach", "--episodes", "3", "--out", str(root), "--json"],
        stdin=operator_side, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(operator_side)
    try:

        def recorder() -> dict:
            assert session.poll() is None, session.stderr.read()[-3000:]
            return latest_status(probe, "/recorder/status") or {}

        # The recorder refuses a start until every topic it records has spoken ("is the graph
        # up?"), and a refused press is spent: wait for that, as a person waits for the prompt.
        wait_for(
            lambda: recorder().get("waiting_for") == [] and probe.messages("/teleop/joy"),
            90.0,
            "recorder ready, teleop",
        )
        os.write(terminal, b"\r")  # teleop_node calls /recorder/start
        wait_for(lambda: recorder().get("frames", 0) >= 5, 30.0, "frames recorded")
        os.write(terminal, b"\r")  # ... and /recorder/stop: saved, solved or not
        wait_for(lambda: recorder().get("episodes") == 1, 30.0, "the episode saved")
        # The referee resets the sim for the next attempt, then waits for the operator.
        sim = lambda: latest_status(probe, "/sim/status") or {}  # noqa: E731
        wait_for(lambda: recorder() and sim().get("episode") == 1, 30.0, "the next attempt")
        os.write(terminal, b"q")  # quit ends the session early
        out, err = session.communicate(timeout=60)
    finally:
        if session.poll() is None:
            session.kill()
        os.close(terminal)
    assert session.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["attempted"] == 1 and result["episodes"] == 1, result
    assert LeRobotDataset(root).num_frames == result["frames"] >= 5


def test_graph_overrides_win_over_the_graph_files_section_for_the_node(isolated_ros_env):
    """`Graph` overrides (the dataset root, the instruction) must reach the node although the
    graph file sets the same parameters in the node's own section, which wins over a bare `-p`."""
    args = ["node", "--ros-args", "--params-file", str(RECORD_GRAPH)]
    from_file = "push the red cube to the green target"
    for overrides, expected in (({}, from_file), ({"task_text": "x"}, "x")):
        context = rclpy.Context()
        rclpy.init(args=args + parameter_arguments("recorder_node", overrides), context=context)
        try:
            node = rclpy.create_node("recorder_node", context=context)
            node.declare_parameter("task_text", "")
            assert node.get_parameter("task_text").value == expected
            node.destroy_node()
        finally:
            rclpy.try_shutdown(context=context)
