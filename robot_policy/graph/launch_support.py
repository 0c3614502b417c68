"""What the launch files share (imported only by `ros2 launch`, where launch_ros exists).

Every launch file is a cell: its graph parameter file, the launch arguments it offers, and the
nodes it starts, each with the graph file's parameters, then the launch arguments that override
single parameters, so `ros2 launch` and `robot-policy up` read the same file. The arguments are
declared here once, so a name means the same in every launch file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# name: (default or None for a required argument, description)
ARGUMENTS: dict[str, tuple[str | None, str]] = {
    "task": ("push", "reach, push, lift"),
    "checkpoint": ("", "checkpoint folder; '' = the shipped push_flow policy"),
    "backend": ("robot_policy", "robot_policy|lerobot (checkpoint: a LeRobot policy folder)"),
    "output": ("joint_trajectory", "joint_trajectory|commands"),
    "root": (None, "dataset folder (created or appended to)"),
    "device": ("gamepad", "keyboard|gamepad|spacemouse|scripted"),
    "task_text": ("push the red cube to the green target", "instruction stored with every frame"),
    "controller": ("joint_trajectory_controller", "the arm's ros2_control controller"),
    "camera_source": ("0", "OpenCV source"),
}


def text(name: str) -> ParameterValue:
    """Launch argument `name` as a string parameter (a path or '' stays a string)."""
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def graph_node(executable: str, overrides: Mapping[str, Any]) -> Node:
    """A robot_policy node with the `graph` file's parameters, then `overrides`, then
    use_sim_time from the launch argument of that name."""
    sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return Node(
        package="robot_policy",
        executable=executable,
        name=executable,
        parameters=[LaunchConfiguration("graph"), {**overrides, "use_sim_time": sim_time}],
        output="screen",
    )


def cell(
    graph_file: str,
    arguments: Sequence[str],
    nodes: Mapping[str, Mapping[str, Any]],
    required: Sequence[str] = (),
) -> LaunchDescription:
    """`graph` (default: the package's config/`graph_file`), the named `ARGUMENTS` (those in
    `required` without their default), `use_sim_time`, and one `graph_node` per `nodes` entry."""
    graph = PathJoinSubstitution([FindPackageShare("robot_policy"), "config", graph_file])
    declared = [DeclareLaunchArgument("graph", default_value=graph, description="graph file")]
    for name in arguments:
        default, description = ARGUMENTS[name]
        extra = {} if default is None or name in required else {"default_value": default}
        declared.append(DeclareLaunchArgument(name, description=description, **extra))
    declared.append(DeclareLaunchArgument("use_sim_time", default_value="false"))
    return LaunchDescription([*declared, *(graph_node(n, o) for n, o in nodes.items())])
