"""Domain randomization settings (the `randomization` section of `config/sim.yaml`).

Object and target poses are always drawn from their ranges; every other perturbation is off by
default so that a plain env matches the demonstrations a policy was trained on. All draws use the
env's seeded generator, so one seed gives one episode whatever is switched on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from robot_policy.settings import load, setting

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomizationConfig:
    """Ranges are (low, high) and drawn uniformly; positions in metres in the robot base frame."""

    object_x: Range = setting((0.4, 0.6), "m: where the cube starts (push, lift), x range")
    object_y: Range = setting((-0.15, 0.15), "m: where the cube starts, y range")
    object_yaw: Range = setting(
        (-math.pi / 4, math.pi / 4), "rad: the cube's start yaw (a cube repeats every 90°)"
    )
    push_distance: Range = setting((0.1, 0.15), "m: push target's distance from the cube")
    reach_x: Range = setting((0.3, 0.6), "m: reach target box, x range")
    reach_y: Range = setting((-0.25, 0.25), "m: reach target box, y range")
    reach_z: Range = setting((0.05, 0.35), "m: reach target box, z range")
    # Optional perturbations (None / 0 = off).
    friction: Range | None = setting(None, "lateral friction of the cube and table; null = off")
    cube_mass: Range | None = setting(None, "kg (the plain cube weighs 0.1); null = off")
    camera_jitter: float = setting(
        0.0, "m; per episode, fixed cameras' eye and focus move up to this", low=0.0
    )
    state_noise_std: float = setting(
        0.0, "gaussian std added to observation.state (rad / m)", low=0.0
    )
    action_latency_steps: int = setting(0, "actions take effect this many policy steps late", low=0)
    home_joint_noise: float = setting(0.0, "rad; uniform offset of the arm's start pose", low=0.0)

    def __post_init__(self) -> None:
        for f in fields(self):  # ranges may arrive as YAML lists; store them as float pairs
            value = getattr(self, f.name)
            if isinstance(value, tuple | list):
                if len(value) != 2 or value[0] > value[1]:
                    raise ValueError(f"{f.name} must be (low, high) with low <= high, got {value}")
                object.__setattr__(self, f.name, (float(value[0]), float(value[1])))
        negatives = [
            name
            for name in (
                "camera_jitter",
                "state_noise_std",
                "action_latency_steps",
                "home_joint_noise",
            )
            if getattr(self, name) < 0
        ]
        if negatives:
            raise ValueError(f"{', '.join(negatives)} must be >= 0")

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], where: str = "randomization"
    ) -> RandomizationConfig:
        """Build from plain data (YAML, JSON) through `settings.load`: unknown keys are errors."""
        return load(cls, values, where)
