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
from robot_policy.nodes.parameters import SCHEMAS, declared

ROOT = Path(__file__).resolve().parents[1]
DECLARED = {node: {p.name for p in declared(node)} for node in SCHEMAS}
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
    """(executable + override keys, declared arguments, read arguments) of a launch file's
    `cell(graph_file, arguments, nodes)` call."""
    tree = ast.parse(path.read_text())
    nodes, declared, read = [], {"graph", "use_sim_time"}, set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", None)
        if name == "cell":
            declared |= {a.value for a in call.args[1].elts}
            for executable, overrides in zip(call.args[2].keys, call.args[2].values, strict=True):
                nodes.append((executable.value, {k.value for k in overrides.keys}))
        elif name in ("LaunchConfiguration", "text"):
            read.add(call.args[0].value)
    return nodes, declared, read


def test_every_offered_argument_is_declared_once():
    # launch_support imports `launch`, which is not installed here: read its table statically.
    support = ast.parse((ROOT / "robot_policy/graph/launch_support.py").read_text())
    (table,) = (
        n.value for n in support.body if isinstance(n, ast.AnnAssign) and n.target.id == "ARGUMENTS"
    )
    offered = set()
    for launch in (ROOT / "launch").glob("*.launch.py"):
        offered |= launch_calls(launch)[1]
    assert offered - {"graph", "use_sim_time"} <= {k.value for k in table.keys}


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
        # setup.py installs one console script per robot_policy/nodes/*_node.py
        installed = (
            executable.endswith("_node")
            and (ROOT / "robot_policy" / "nodes" / f"{executable}.py").is_file()
        )
        assert installed and "nodes/*_node.py" in setup, f"{executable} is not installed"
        assert executable in graph, f"{launch.name} starts {executable}, not in its graph file"
        assert keys <= DECLARED[executable], sorted(keys - DECLARED[executable])
    assert {n for n, _ in nodes} == set(graph), "launch file and graph file start different nodes"
    assert read <= declared, sorted(read - declared)
