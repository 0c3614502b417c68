"""control_node's /safety/status: the values an operator or a test reads, and the headline.

Split from control_node so that module holds the loop and its callbacks; these functions only
read the node (under its lock, where the loop and the callbacks write) and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus

if TYPE_CHECKING:
    from robot_policy.nodes.control_node import ControlNode
    from robot_policy.runtime.controller import Controller


def control_status(node: ControlNode) -> dict[str, Any]:
    """Everything an operator or a test needs to know about the loop and the filter."""
    with node._lock:
        controller = node.controller
        result = controller.last_result
        velocity = node.velocity.velocity
        values = {
            "enabled": node._enabled,
            "source": "teleop" if node.teleop_active(node.now()) else "policy",
            "e_stop": controller.e_stopped or "",
            "held": bool(result.held) if result else False,
            "last_reasons": ",".join(result.reasons) if result else "",
            "chunks": dict(node._chunks),
            "last_rejection": node._last_rejection,
            "state_age_ms": (node.now() - node._state_received) * 1e3,
            # What /control/enable true compares with enable_max_speed (None: not known).
            "measured_speed": None if velocity is None else float(np.abs(velocity).max()),
            "reduced_speed": controller.reduced_speed,
            "speed_monitor": speed_monitor(controller),
            **controller.stats.as_dict(),
            "scheduler": vars(controller.scheduler.stats).copy(),
        }
    loop = node.loop.stats()
    values["loop"] = {
        "rate_hz": loop["rate_hz_measured"],
        "ticks": loop["ticks"],
        "realtime": node._realtime,
        "deadline_misses": loop["overruns"],
        "miss_times": node.loop.misses(),  # monotonic: told from stalls by the bench
        "skipped_ticks": loop["skipped_ticks"],
        "jitter_ms_p99": loop["jitter_ms_p99"],
        "tick_ms_p99": node._tick_ms.percentile(99),
        "obs_to_command_ms_p50": node._state_age_ms.percentile(50),
        "obs_to_command_ms_p99": node._state_age_ms.percentile(99),
        "chunk_age_ms_p50": node._chunk_age_ms.percentile(50),
        "chunk_age_ms_p99": node._chunk_age_ms.percentile(99),
        "first_commands": [list(pair) for pair in node.first_commands],
    }
    return values


def speed_monitor(controller: Controller) -> dict[str, Any]:
    """The monitor's latest verdict: worst measured joint speed over its hardware limit, the
    tool's measured speed (m/s), the excesses so far and the peak ratio."""
    monitor, verdict = controller.monitor, controller.last_verdict
    if monitor is None:
        return {}
    return {
        "joint_ratio": verdict.joint_ratio if verdict else None,
        "tcp_speed": verdict.tcp_speed if verdict else None,
        "excesses": monitor.excesses,
        "peak_ratio": monitor.peak_ratio,
        "slowed": controller.filter.speed is not None and controller.filter.speed.joint_scale < 1,
    }


def headline(values: Mapping[str, Any]) -> tuple[bytes, str]:
    """The diagnostic level and message for `control_status`'s values: the worst first."""
    if values["e_stop"]:
        return DiagnosticStatus.ERROR, f"e-stopped ({values['e_stop']})"
    if not values["enabled"]:
        return DiagnosticStatus.WARN, "disabled"
    if values["held"]:
        return DiagnosticStatus.WARN, f"holding: {values['last_reasons']}"
    return DiagnosticStatus.OK, "following chunks"
