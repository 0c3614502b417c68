"""Launch files and graph YAMLs agree with the nodes they start.

`launch` cannot be installed here, so the launch files are checked statically: every node they
start is an installed executable, every parameter they or the graph files set is one the node
declares (a typo in a YAML key would otherwise be silently ignored by rclpy), and every launch
argument they read is declared.
"""

import ast
from pathlib import Path

import pytest
import yaml

from robot_policy.graph.runner import graph_nodes
from robot_policy.nodes import (
    control_node,
    perception_node,
    policy_node,
    recorder_node,
    sim_node,
    teleop_node,
)

ROOT = Path(__file__).resolve().parents[1]
DECLARED = {
    "sim_node": set(sim_node.PARAMETERS),
    "policy_node": set(policy_node.PARAMETERS),
    "control_node": set(control_node.PARAMETERS),
    "perception_node": set(perception_node.PARAMETERS) | {"crop"},
    "teleop_node": set(teleop_node.PARAMETERS),
    "recorder_node": set(recorder_node.PARAMETERS),
}
COMMON = {"use_sim_time"}


def flatten(params: dict, prefix: str = "") -> set[str]:
    names = set()
    for key, value in params.items():
        if isinstance(value, dict):
            names |= flatten(value, f"{prefix}{key}.")
        else:
            names.add(f"{prefix}{key}")
    return names


@pytest.mark.parametrize("graph", sorted((ROOT / "config").glob("*_graph.yaml")), ids=str)
def test_graph_files_set_only_declared_parameters(graph):
    data = yaml.safe_load(graph.read_text())
    for node in graph_nodes(graph):
        unknown = flatten(data[node]["ros__parameters"]) - DECLARED[node] - COMMON
        assert not unknown, f"{graph.name}: {node} does not declare {sorted(unknown)}"


def launch_calls(path: Path) -> tuple[list[tuple[str, set[str]]], set[str], set[str]]:
    """(graph_node executable + override keys, declared arguments, read arguments)."""
    tree = ast.parse(path.read_text())
    nodes, declared, read = [], set(), set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", None)
        if name == "graph_node":
            executable = call.args[0].value
            keys = {k.value for k in call.args[1].keys}
            nodes.append((executable, keys))
        elif name == "DeclareLaunchArgument":
            declared.add(call.args[0].value)
        elif name == "LaunchConfiguration":
            read.add(call.args[0].value)
    return nodes, declared, read


@pytest.mark.parametrize("launch", sorted((ROOT / "launch").glob("*.launch.py")), ids=str)
def test_launch_files_start_declared_nodes_with_declared_parameters(launch):
    nodes, declared, read = launch_calls(launch)
    assert nodes, f"{launch.name} starts no node"
    setup = (ROOT / "setup.py").read_text()
    graph_default = f'"{launch.name.removesuffix(".launch.py")}_graph.yaml"'
    assert (
        graph_default in launch.read_text()
        and (ROOT / "config" / graph_default.strip('"')).exists()
    )
    graph = graph_nodes(ROOT / "config" / graph_default.strip('"'))
    for executable, keys in nodes:
        assert f'"{executable}"' in setup, f"{executable} is not an installed executable"
        assert executable in graph, f"{launch.name} starts {executable}, not in its graph file"
        assert keys <= DECLARED[executable], sorted(keys - DECLARED[executable])
    assert {n for n, _ in nodes} == set(graph), "launch file and graph file start different nodes"
    assert read | {"graph", "use_sim_time"} <= declared, sorted(read - declared)
