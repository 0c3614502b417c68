"""`robot-policy up CONFIG`: run a ROS 2 graph from its YAML without `ros2 launch`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_policy.cli.common import command, parse_overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "up", run, "run a ROS 2 graph from its YAML, without `ros2 launch`")
    p.add_argument("config", type=Path, help="graph parameter file, e.g. config/sim_graph.yaml")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (repeatable), e.g. --set sim_node.task=lift",
    )
    p.add_argument("--only", default=None, help="comma-separated subset of the graph's nodes")
    p.add_argument(
        "--viz",
        choices=("rerun", "foxglove"),
        default=None,
        help="also start viz_node: the graph live in Rerun (a spawned viewer) or Foxglove "
        "(ws://localhost:8765); cameras are sim_node's; --set viz_node.* for the rest",
    )
    p.add_argument(
        "--viz-save",
        default="",
        metavar="PATH",
        help="--viz rerun: write an .rrd instead of spawning a viewer; foxglove: also an MCAP",
    )
    p.add_argument(
        "--print-params",
        action="store_true",
        help="print every node's effective parameters (default <- graph file <- --set) with "
        "their descriptions, and exit without starting anything",
    )


def _overrides(items: list[str]) -> dict[str, dict]:
    overrides: dict[str, dict] = {}
    for node_param, value in parse_overrides(items).items():
        node, _, param = node_param.partition(".")
        if not param:
            raise ValueError(f"--set takes NODE.PARAM=VALUE, got {node_param!r}")
        overrides.setdefault(node, {})[param] = value
    return overrides


def _add_viz(args: argparse.Namespace, overrides: dict[str, dict]) -> list[str]:
    """viz_node's overrides for `--viz`: the viewer, where to save, and the graph's cameras."""
    if args.viz is None:
        if args.viz_save:
            raise ValueError("--viz-save needs --viz rerun|foxglove")
        return []
    from robot_policy.graph.runner import effective_parameters, graph_nodes

    viz = overrides.setdefault("viz_node", {})
    viz.setdefault("viewer", args.viz)
    if args.viz_save:
        viz.setdefault("save", str(Path(args.viz_save).resolve()))
    if "sim_node" in graph_nodes(args.config) and "cameras" not in viz:
        sim = {k: v for k, v in overrides.items() if k == "sim_node"}
        cameras = effective_parameters(args.config, sim)["sim_node"]["cameras"]["value"]
        viz["cameras"] = list(cameras)
    return ["viz_node"]


def run(args: argparse.Namespace) -> int:
    """Run a graph until Ctrl-C or until a node exits (then stop the rest)."""
    import time

    from robot_policy.graph.runner import Graph

    overrides = _overrides(args.set)
    if args.print_params:
        from robot_policy.graph.runner import effective_parameters, format_parameters

        params = effective_parameters(args.config, overrides)
        print(json.dumps(params) if args.json else format_parameters(params))
        return 0
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    extra = _add_viz(args, overrides)
    if only is not None:
        only += extra
    graph = Graph(args.config, overrides, only=only, extra=extra)
    print(f"robot-policy up: starting {', '.join(graph.nodes)} (Ctrl-C stops)", file=sys.stderr)
    graph.start()
    try:
        while (ended := graph.exited()) is None:
            time.sleep(0.2)
        print(f"robot-policy up: {ended[0]} exited with code {ended[1]}", file=sys.stderr)
        return ended[1] or 1
    except KeyboardInterrupt:
        return 0
    finally:
        codes = graph.stop()
        print(f"robot-policy up: stopped ({codes})", file=sys.stderr)
