"""rclpy works inside the project's venv (PyPI ROS 2 wheels, Fast DDS on loopback).

The publisher runs in a child process so the message really crosses DDS between processes.
Each test run gets its own ROS_DOMAIN_ID and localhost-only discovery, so parallel runs and
other machines on the network cannot interfere.
"""

import subprocess
import sys
import textwrap
import time

import pytest
import rclpy
import rclpy.executors
from sensor_msgs.msg import JointState

PUBLISHER = textwrap.dedent(
    """
    import sys
    import rclpy
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node("test_joint_state_publisher")
    pub = node.create_publisher(JointState, "/joint_states", 10)
    msg = JointState()
    msg.name = [f"panda_joint{i}" for i in range(1, 8)]
    msg.position = [0.1 * i for i in range(7)]
    # Publish until the parent (the subscriber) closes our stdin: no fixed sleeps either side.
    timer = node.create_timer(0.02, lambda: pub.publish(msg))
    import threading
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.is_set():
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_joint_state_crosses_processes(isolated_ros_env):
    child = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER], stdin=subprocess.PIPE, env=isolated_ros_env
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    received: list[JointState] = []
    try:
        node = rclpy.create_node("test_joint_state_subscriber", context=context)
        node.create_subscription(JointState, "/joint_states", received.append, 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 30.0  # discovery upper bound, not a wait that makes it pass
        while not received and time.monotonic() < deadline and child.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        child.stdin.close()
        child.wait(timeout=30)
    assert child.returncode == 0
    assert received, "no JointState arrived over DDS within 30 s"
    msg = received[0]
    assert list(msg.name) == [f"panda_joint{i}" for i in range(1, 8)]
    assert list(msg.position) == pytest.approx([0.1 * i for i in range(7)])
