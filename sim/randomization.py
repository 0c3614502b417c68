"""Domain randomization settings (the `randomization` section of `config/sim.yaml`).

Object and target poses are always drawn from their ranges; every other perturbation is off by
default so that a plain env matches the demonstrations a policy was trained on. All draws use the
env's seeded generator, so one seed gives one episode whatever is switched on; the visual ones
(light, colours, camera angle, image noise) use a generator spawned from it, so that switching
them on changes frames only (`sim.visual`). `config/sim_visual_randomization.yaml` and
`config/sim_visual_shift.yaml` are a training-time and a held-out evaluation setting of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from robot_policy.settings import check_value, load, setting

Range = tuple[float, float]
CUBE_COLOR_JITTER_MAX = 0.5  # red 0.85 stays above 0.42, green and blue (0.15) below 0.23
RGB = tuple[float, float, float]


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
    # Visual perturbations (0 / null = off): they change frames only, never the physics.
    light_direction_jitter: float = setting(
        0.0, "rad; per episode, the light direction tilts by up to this", low=0.0
    )
    light_color_jitter: float = setting(
        0.0,
        "fraction; per episode, each light colour channel and the ambient and diffuse strengths"
        " scale by 1 +- up to this",
        low=0.0,
        high=1.0,
    )
    table_color_jitter: float = setting(
        0.0,
        "fraction; per episode, each table RGB channel scales by 1 +- up to this",
        low=0.0,
        high=1.0,
    )
    table_rgb: RGB | None = setting(
        None,
        "[r, g, b] in 0..1: the table's colour before table_color_jitter; null = nominal",
        low=0.0,
        high=1.0,
    )
    cube_color_jitter: float = setting(
        0.0,
        "fraction; per episode, each cube RGB channel scales by 1 +- up to this; at most 0.5,"
        " which keeps the cube red (a policy finds it by colour)",
        low=0.0,
        high=CUBE_COLOR_JITTER_MAX,
    )
    camera_angle_jitter: float = setting(
        0.0, "deg; per episode, fixed cameras' view direction turns by up to this", low=0.0
    )
    image_noise_std: float = setting(
        0.0, "uint8 levels; gaussian noise on every pixel of every frame", low=0.0
    )

    def __post_init__(self) -> None:
        """Checks the declared bounds here too, so a config built in code fails as a file does."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "table_rgb":  # the one list that is not a (low, high) range
                if value is not None:
                    if len(value) != 3:
                        raise ValueError(f"table_rgb must be [r, g, b], got {value}")
                    object.__setattr__(self, f.name, tuple(float(v) for v in value))
            elif isinstance(value, tuple | list):  # ranges may arrive as YAML lists
                if len(value) != 2 or value[0] > value[1]:
                    raise ValueError(f"{f.name} must be (low, high) with low <= high, got {value}")
                object.__setattr__(self, f.name, (float(value[0]), float(value[1])))
            check_value(getattr(self, f.name), f.metadata, f.name)

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], where: str = "randomization"
    ) -> RandomizationConfig:
        """Build from plain data (YAML, JSON) through `settings.load`: unknown keys are errors."""
        return load(cls, values, where)
