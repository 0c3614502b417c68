"""The strategy registry: every consumer reads one list, and ROS refusals say why."""

from types import SimpleNamespace

import pytest

from robot_policy.runtime.chunks import SchedulerConfig
from robot_policy.runtime.strategies import (
    NAMES,
    STITCHING,
    STRATEGIES,
    check_ros,
    get_strategy,
    strategies_for,
)


def test_every_strategy_stitches_with_a_scheduler_mode():
    for strategy in STRATEGIES.values():
        assert SchedulerConfig(strategy=strategy.stitching).strategy in STITCHING


def test_the_scheduler_refuses_policy_side_names():
    with pytest.raises(ValueError, match="strategy must be one of"):
        SchedulerConfig(strategy="rtc")


def test_streaming_needs_a_streaming_checkpoint():
    assert "streaming" not in strategies_for(SimpleNamespace(streaming=False))
    assert "streaming" not in strategies_for(SimpleNamespace())
    assert strategies_for(SimpleNamespace(streaming=True)) == NAMES


def test_ros_refusals_name_the_reason_and_the_alternative():
    assert check_ros("receding").name == "receding"
    assert check_ros("ensemble").replan_every_step
    for name in ("rtc", "streaming"):
        with pytest.raises(ValueError, match="cannot run through ROS.*in-process"):
            check_ros(name)


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ValueError, match="receding"):
        get_strategy("fancy")


def test_eval_through_ros_refuses_before_any_node_starts(monkeypatch):
    from robot_policy.graph import referee

    def no_graph(*args, **kwargs):
        raise AssertionError("a node was started for a strategy the graph cannot run")

    monkeypatch.setattr(referee, "running_graph", no_graph)
    for name in ("rtc", "streaming"):
        with pytest.raises(ValueError, match=f"strategy {name} cannot run through ROS"):
            referee.evaluate_ros("push", 1, strategy=name, progress=False)
