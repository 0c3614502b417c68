"""The age of a camera frame at the first command computed from it, joined per chunk.

policy_node's status lists each recent chunk's stamp with the stamp of the oldest camera frame
it was computed from (`camera_frames`); control_node's lists each recent chunk's stamp with the
time its first command went out (`loop.first_commands`). Joining them per chunk gives the exact
figure per chunk, not a sum of two nodes' percentiles. `bench ros` reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray

from robot_policy.graph.referee import Referee


def chunk_key(stamp: float) -> int:
    """Chunk stamps travel as ROS time (integer ns) between the nodes: join on microseconds."""
    return round(stamp * 1e6)


def camera_to_command_ms(
    camera_frames: Mapping[int, float], first_commands: Mapping[int, float]
) -> list[float]:
    """Per chunk both nodes reported (keyed by `chunk_key(chunk stamp)`): ms from the stamp of the
    oldest camera frame the chunk used to its first command going out."""
    joined = camera_frames.keys() & first_commands.keys()
    return [(first_commands[k] - camera_frames[k]) * 1e3 for k in sorted(joined)]


class LatencyReferee(Referee):
    """The evaluation referee, also keeping every chunk pair the nodes' statuses list."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.camera_frames: dict[int, float] = {}
        self.first_commands: dict[int, float] = {}

    def _on_status(self, msg: DiagnosticArray) -> None:
        super()._on_status(msg)
        collect_pairs(self.camera_frames, self.status.get("policy_node", {}).get("camera_frames"))
        loop = self.status.get("control_node", {}).get("loop", {})
        collect_pairs(self.first_commands, loop.get("first_commands"))


def collect_pairs(into: dict[int, float], pairs: Iterable[list[float]] | None) -> None:
    for stamp, value in pairs or ():
        into.setdefault(chunk_key(stamp), value)
