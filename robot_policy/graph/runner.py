"""Running a graph YAML without `ros2 launch`: one child process per node, same parameter file.

A graph file is a standard ROS 2 parameter file whose top-level keys are node names (each the
name of a robot_policy node executable) plus optionally `/**` for parameters every node gets.
`ros2 launch robot_policy sim.launch.py` reads the same file, so the two ways of starting a
graph cannot drift apart. Child processes rather than one executor: a control loop must not
share a Python interpreter lock with PyBullet and a policy.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from robot_policy.settings import config_path, from_flat

NODES = (
    "sim_node",
    "perception_node",
    "policy_node",
    "control_node",
    "teleop_node",
    "recorder_node",
    "viz_node",
)
ALL_NODES_KEY = "/**"
# The simulated cell, as `robot-policy eval --ros` and the demo run it.
DEFAULT_GRAPH = config_path("sim_graph.yaml")


def _die_with_parent() -> None:
    """In the child: on Linux, ask for SIGTERM when the process that started us dies, so a
    graph never outlives a killed `robot-policy up`, evaluation or test run (stop() covers
    every orderly exit). Elsewhere, a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


class GraphError(ValueError):
    """The graph file is not a usable parameter file for robot_policy nodes."""


def graph_nodes(path: str | Path) -> list[str]:
    """The nodes a graph file starts, in file order, after checking its shape."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GraphError(f"cannot read graph {path}: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise GraphError(f"{path}: expected a mapping of node names to ros__parameters")
    nodes = []
    for name, section in data.items():
        if not isinstance(section, dict) or set(section) != {"ros__parameters"}:
            raise GraphError(f"{path}: section {name!r} must hold exactly 'ros__parameters'")
        if name == ALL_NODES_KEY:
            continue
        if name not in NODES:
            raise GraphError(f"{path}: unknown node {name!r}; robot_policy nodes are {NODES}")
        nodes.append(name)
    if not nodes:
        raise GraphError(f"{path}: no nodes")
    return nodes


def parameter_arguments(node: str, overrides: Mapping[str, Any]) -> list[str]:
    """`-p node:name:=value` arguments; values in YAML syntax, as `ros2 run` expects them.

    Prefixed with the node's name: rcl files a bare `-p name:=value` under `/**`, and a
    params file's section for the node by name wins over `/**`, so a bare override of a
    parameter the graph file sets would be silently ignored.
    """
    args: list[str] = []
    for name, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
        args += ["-p", f"{node}:{name}:={text}"]
    return args


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML groups as dotted names (`scheduler: {interpolate: true}`), as rcl reads them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def effective_parameters(
    config: str | Path, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """What every node of graph `config` will run with, and where each value comes from.

    {node: {parameter: {"value", "default", "source": "default"|"file"|"override",
    "description"}}}; `/**` entries count as the file's for every node. A name the node does
    not declare, or a bad value, is a GraphError (the node would refuse to start).
    """
    from robot_policy.nodes.parameters import SCHEMAS, declared

    data = yaml.safe_load(Path(config).read_text())
    common = _flat((data.get(ALL_NODES_KEY) or {}).get("ros__parameters") or {})
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for node in graph_nodes(config):
        params = {p.name: p for p in declared(node)}
        file = _flat(data[node]["ros__parameters"] or {})
        given = _flat((overrides or {}).get(node, {}))
        unknown = sorted((set(file) | set(given)) - set(params))
        if unknown:
            raise GraphError(f"{config}: {node} declares no parameters {unknown}")
        table = {}
        for name, p in params.items():
            source = "override" if name in given else "file" if name in file else "default"
            value = given.get(name, file.get(name, common.get(name, p.default)))
            if name in common and source == "default":
                source = "file"
            table[name] = {
                "value": value,
                "default": p.default,
                "source": source,
                "description": p.description,
            }
        try:
            from_flat(SCHEMAS[node][0], {k: v["value"] for k, v in table.items()}, node)
        except ValueError as err:
            raise GraphError(f"{config}: {err}") from err
        result[node] = table
    return result


def format_parameters(parameters: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """`effective_parameters` for people: one line per parameter, changed values marked."""
    lines = []
    for node, table in parameters.items():
        lines.append(f"{node}:")
        width = max((len(n) for n in table), default=0)
        for name, entry in table.items():
            value = yaml.safe_dump(_plain(entry["value"]), default_flow_style=True, width=10**6)
            value = value.strip().removesuffix("...").strip()
            mark = "" if entry["source"] == "default" else f"  [{entry['source']}]"
            lines.append(f"  {name:<{width}}  {value}{mark}  # {entry['description']}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Graph:
    """The node processes of one graph file; a context manager that always stops them."""

    def __init__(
        self,
        config: str | Path,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        only: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        log: IO[str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """`extra`: nodes the file does not list, started with `overrides` only (`up --viz`)."""
        self.config = Path(config)
        nodes = graph_nodes(self.config)
        unknown_extra = [n for n in extra if n not in NODES or n in nodes]
        if unknown_extra:
            raise GraphError(f"extra nodes {unknown_extra}: not robot_policy nodes, or listed")
        nodes = [*nodes, *extra]
        if only is not None:
            missing = [n for n in only if n not in nodes]
            if missing:
                raise GraphError(f"{config} has no nodes {missing}; it has {nodes}")
            nodes = [n for n in nodes if n in only]
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(nodes))
        if unknown:
            raise GraphError(f"overrides for nodes not in the graph: {unknown}")
        self.nodes = nodes
        self.overrides = overrides
        self.env = dict(env) if env is not None else dict(os.environ)
        self.log = log
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, node: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            f"robot_policy.nodes.{node}",
            "--ros-args",
            "--params-file",
            str(self.config),
            *parameter_arguments(node, self.overrides.get(node, {})),
        ]

    def start(self) -> None:
        for node in self.nodes:
            self.processes[node] = subprocess.Popen(
                self.command(node),
                env=self.env,
                stdout=self.log,
                stderr=subprocess.STDOUT if self.log is not None else None,
                start_new_session=True,  # our Ctrl-C reaches the children only through stop()
                preexec_fn=_die_with_parent,
            )

    def exited(self) -> tuple[str, int] | None:
        """The first node process that has ended, with its exit code, or None."""
        for node, proc in self.processes.items():
            code = proc.poll()
            if code is not None:
                return node, code
        return None

    def kill(self, node: str) -> None:
        """SIGKILL one node (tests: a crashed policy must leave a holding arm)."""
        self.processes[node].kill()
        self.processes[node].wait()

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """SIGINT every node (clean shutdown), SIGKILL what is still alive after `timeout`."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        codes = {}
        for node, proc in self.processes.items():
            try:
                codes[node] = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[node] = proc.wait()
        return codes

    def __enter__(self) -> Graph:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
