"""What the launch files share (imported only by `ros2 launch`, where launch_ros exists).

Every node of a graph is started the same way: its executable, the graph's parameter file, then
the launch arguments that override single parameters, so `ros2 launch` and `robot-policy up`
read the same file.
"""

from __future__ import annotations

from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def graph_node(executable: str, overrides: dict) -> Node:
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
