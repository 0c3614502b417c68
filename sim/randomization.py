"""Domain randomization settings (the `randomization` section of `config/sim.yaml`).

Object and target poses are always drawn from their ranges; every other perturbation is off by
default so that a plain env matches the demonstrations a policy was trained on. All draws use the
env's seeded generator, so one seed gives one episode whatever is switched on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

Range = tuple[float, float]


@dataclass(frozen=True)
class RandomizationConfig:
    """Ranges are (low, high) and drawn uniformly; positions in metres in the robot base frame."""

    # Where the cube starts (push, lift): a box on the table in front of the robot.
    object_x: Range = (0.4, 0.6)
    object_y: Range = (-0.15, 0.15)
    object_yaw: Range = (-math.pi / 4, math.pi / 4)  # a cube repeats every 90°
    # push: the target lies this far from the cube, in any direction on the table.
    push_distance: Range = (0.1, 0.15)
    # reach: the target point anywhere in this box.
    reach_x: Range = (0.3, 0.6)
    reach_y: Range = (-0.25, 0.25)
    reach_z: Range = (0.05, 0.35)
    # Optional perturbations (None / 0 = off).
    friction: Range | None = None  # lateral friction of the cube and the table
    cube_mass: Range | None = None  # kg; the unperturbed cube weighs 0.1 kg
    camera_jitter: float = 0.0  # m; per episode, fixed cameras' eye and focus move up to this
    state_noise_std: float = 0.0  # gaussian std added to observation.state (rad / m)
    action_latency_steps: int = 0  # actions take effect this many policy steps late
    home_joint_noise: float = 0.0  # rad; uniform offset of the arm's start pose

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
    def from_dict(cls, values: dict[str, Any]) -> RandomizationConfig:
        """Build from plain data (YAML, JSON); unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown randomization keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)
