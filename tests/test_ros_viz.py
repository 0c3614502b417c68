"""viz_node in the running graph: what reaches the .rrd, read back with rerun-sdk's reader.

The shipped policy drives the simulated arm; viz_node (as `up --viz rerun --viz-save` adds it)
records into an .rrd until the graph stops. Waits are upper bounds for start-up on a busy
machine, not delays that make the test pass.
"""

from __future__ import annotations

import json

from conftest import wait_for
from diagnostic_msgs.msg import DiagnosticArray
from rerun.chunk import RrdReader

from robot_policy.graph.runner import DEFAULT_GRAPH, Graph
from robot_policy.nodes.common import STATE_QOS
from robot_policy.robots import load_robot

STARTUP = 90.0


def published_chunks(probe) -> int:
    msgs = probe.messages("/policy/status")
    if not msgs:
        return 0
    values = {kv.key: kv.value for kv in msgs[-1].status[0].values}
    return int(json.loads(values.get("published", "0")))


def test_the_live_view_records_the_robot_the_plan_and_the_filter(probe, isolated_ros_env, tmp_path):
    rrd = tmp_path / "live.rrd"
    for topic in ("/policy/status", "/safety/status"):
        probe.watch(DiagnosticArray, topic, STATE_QOS)
    overrides = {"viz_node": {"viewer": "rerun", "save": str(rrd)}}
    with open(tmp_path / "graph.log", "w") as log:
        graph = Graph(DEFAULT_GRAPH, overrides, env=isolated_ros_env, log=log, extra=["viz_node"])
        graph.start()
        try:
            wait_for(lambda: published_chunks(probe) >= 3, STARTUP, "three chunks published")
            wait_for(lambda: probe.messages("/safety/status"), STARTUP, "a safety status")
        finally:
            codes = graph.stop()
    assert codes["viz_node"] == 0, (tmp_path / "graph.log").read_text()[-3000:]
    entities: dict[str, int] = {}
    for chunk in RrdReader(rrd).stream():
        entities[chunk.entity_path] = entities.get(chunk.entity_path, 0) + chunk.num_rows
    for name in load_robot().arm_joint_names:
        assert entities.get(f"/robot/joints/{name}", 0) > 0, name
        assert entities.get(f"/joint_states/{name}", 0) > 0, name
    assert entities.get("/chunk/planned_path", 0) >= 1
    assert any(e.startswith("/command/") for e in entities)
    assert entities.get("/safety_status/ticks", 0) >= 1, sorted(entities)
    assert entities.get("/policy_status/latency_ms_p50", 0) >= 1, sorted(entities)
