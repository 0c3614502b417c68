"""Graph YAMLs hold only overrides of the node schemas, and only valid ones.

Every key must be a parameter the node declares, every value must load through the node's
schema (type, range, choices), and no value may restate the schema default (a restated default
is a second place the number lives, and it silently stops following the schema).
"""

from pathlib import Path

import pytest
import yaml

from robot_policy import settings
from robot_policy.graph.runner import (
    ALL_NODES_KEY,
    effective_parameters,
    format_parameters,
    graph_nodes,
)
from robot_policy.nodes.parameters import SCHEMAS, declared
from robot_policy.settings import flatten

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = sorted((ROOT / "config").glob("*_graph.yaml"))


def flat(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in (params or {}).items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_graph_sets_only_declared_valid_non_default_values(graph):
    data = yaml.safe_load(graph.read_text())
    assert set(data[ALL_NODES_KEY]["ros__parameters"]) == {"use_sim_time"}
    for node in graph_nodes(graph):
        schema, _ = SCHEMAS[node]
        params = {p.name: p for p in declared(node)}
        values = flat(data[node]["ros__parameters"])
        unknown = sorted(set(values) - set(params))
        assert not unknown, f"{graph.name}: {node} does not declare {unknown}"
        settings.from_flat(schema, values, f"{graph.name}:{node}")  # types, ranges, choices
        restated = sorted(
            name
            for name, value in values.items()
            if settings.coerce(value, params[name].type, name) == params[name].default
        )
        assert not restated, f"{graph.name}: {node} restates schema defaults {restated}"


def test_a_bad_value_or_unknown_name_is_refused(tmp_path):
    path = tmp_path / "bad_graph.yaml"
    path.write_text("control_node:\n  ros__parameters:\n    scheduler: {strategy: fancy}\n")
    with pytest.raises(ValueError, match=r"control_node.scheduler.strategy: must be one of"):
        effective_parameters(path)
    path.write_text("control_node:\n  ros__parameters:\n    scheduler: {n_action_steps: 4}\n")
    with pytest.raises(ValueError, match="n_action_steps"):  # dead in control_node: not declared
        effective_parameters(path)
    path.write_text("policy_node:\n  ros__parameters:\n    threads: 0\n")
    with pytest.raises(ValueError, match="policy_node.threads: must be >= 1, got 0"):
        effective_parameters(path)


def test_effective_parameters_say_where_each_value_comes_from():
    graph = ROOT / "config" / "real_graph.yaml"
    table = effective_parameters(graph, {"policy_node": {"checkpoint": "/ckpt"}})
    control = table["control_node"]
    assert control["rate_hz"] == {
        "value": 100.0,
        "default": 100.0,
        "source": "default",
        "description": control["rate_hz"]["description"],
    }
    assert control["scheduler.stale_margin"]["source"] == "file"
    assert table["policy_node"]["checkpoint"]["source"] == "override"
    text = format_parameters(table)
    assert "checkpoint" in text and "[override]" in text and "[file]" in text


def test_watchdog_defaults_come_from_the_watchdog():
    from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT

    params = {p.name: p.default for p in declared("control_node")}
    assert (params["hold_timeout"], params["stop_timeout"]) == (HOLD_TIMEOUT, STOP_TIMEOUT)


def test_policy_node_declares_the_inference_set_up_itself():
    from robot_policy.policies.inference import InferenceSettings

    params = {p.name: p for p in declared("policy_node")}
    for p in flatten(InferenceSettings):
        assert params[p.name] == p


def test_an_image_checkpoint_makes_sim_node_render_its_cameras(tmp_path):
    from robot_policy.graph.referee import graph_overrides
    from robot_policy.policies import FlowConfig, make_policy, save_policy

    def overrides(cameras: tuple[str, ...]) -> dict:
        config = FlowConfig(
            action_dim=8,
            state_keys=("observation.state",),
            state_dims=(9,),
            camera_keys=tuple(f"observation.images.{c}" for c in cameras),
            down_dims=(32, 64),
            horizon=8,
            n_action_steps=4,
        )
        folder = save_policy(make_policy(config), tmp_path / "-".join(("ckpt", *cameras)))
        return graph_overrides("push", 0, folder, "receding", 0, None)

    image = overrides(("front", "wrist"))
    assert image["sim_node"]["cameras"] == ["front", "wrist"]
    params = effective_parameters(ROOT / "config" / "sim_graph.yaml", image)["sim_node"]
    assert params["cameras"]["value"] == ["front", "wrist"]
    assert "cameras" not in overrides(())["sim_node"]
