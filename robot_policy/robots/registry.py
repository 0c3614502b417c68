"""Robots by name: the one place a `robot:` parameter becomes a description.

Every path (sim, nodes, safety, teleop, benchmarks) resolves its robot here, so adding an arm
is one entry in `ROBOTS` plus its safety YAML (`config/safety/<name>.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable

from robot_policy.robots.description import RobotDescription, panda

ROBOTS: dict[str, Callable[[], RobotDescription]] = {"panda": panda}
DEFAULT_ROBOT = "panda"


def load_robot(name: str = DEFAULT_ROBOT) -> RobotDescription:
    """The description of robot `name`; an unknown name is an error listing the known ones."""
    try:
        factory = ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known: {sorted(ROBOTS)}") from None
    return factory()
