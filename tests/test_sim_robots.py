"""The Panda description and the simulator's throughput report."""

from robot_policy.bench import sim as benchmark
from robot_policy.robots import load_robot


def test_panda_description_matches_the_urdf():
    robot = load_robot()
    assert robot.arm_joint_names == [f"panda_joint{i}" for i in range(1, 8)]
    assert robot.arm_indices == list(range(7))
    assert robot.finger_indices == [9, 10]
    assert robot.ee_link_index == 11 and robot.ee_link_name == "panda_grasptarget"
    assert robot.gripper_max_width == 0.08
    assert robot.arm[3].lower == -3.1416 and robot.arm[3].upper == 0.0
    assert robot.arm[0].max_velocity == 2.175 and robot.arm[0].max_effort == 87.0
    assert all(j.lower <= q <= j.upper for j, q in zip(robot.arm, robot.home, strict=True))


def test_benchmark_reports_every_figure():
    result = benchmark.run(seconds_per_case=0.05)
    assert set(result) == {
        "physics_steps_per_s",
        "env_steps_per_s_state",
        "env_steps_per_s_images",
        "render_ms_simple",
        "render_ms_full",
    }
    assert all(value > 0 for value in result.values())
