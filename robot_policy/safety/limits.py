"""The joint limits the safety filter enforces, and where each number comes from.

A URDF declares position and velocity limits only, so acceleration and jerk come from the
robot's `config/safety/<robot>.yaml` (`limits:`, read through `LimitSettings`). The code
fallbacks are conservative datasheet-level values (10 rad/s², 5000 rad/s³) halved via
`DEFAULT_DYNAMICS_SCALE`, because a learned policy has no business driving an arm at its rated
maxima. The gripper is one more "joint": the finger opening width in metres, named `GRIPPER`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from robot_policy.robots.description import GRIPPER, RobotDescription
from robot_policy.settings import load, setting

DATASHEET_ACCELERATION = 10.0  # rad/s², datasheet-level for a 7-dof collaborative arm
DATASHEET_JERK = 5000.0  # rad/s³, datasheet-level
DEFAULT_DYNAMICS_SCALE = 0.5
DEFAULT_ACCELERATION = DATASHEET_ACCELERATION * DEFAULT_DYNAMICS_SCALE
DEFAULT_JERK = DATASHEET_JERK * DEFAULT_DYNAMICS_SCALE
DEFAULT_MARGIN = 0.05  # rad kept clear of each URDF position limit
# Width-command smoothing for a parallel gripper; datasheets give no acceleration or jerk, so
# these are ours, with jerk high enough to never bind at 100 Hz.
GRIPPER_ACCELERATION = 1.0  # m/s²
GRIPPER_JERK = 200.0  # m/s³


@dataclass(frozen=True)
class LimitSettings:
    """The `limits:` section of a safety YAML: `SafetyLimits.from_robot`'s keywords."""

    margin: float = setting(DEFAULT_MARGIN, "rad kept clear of each URDF position limit", low=0.0)
    velocity_scale: float = setting(1.0, "URDF velocity limits times this", high=1.0)
    acceleration: float | tuple[float, ...] = setting(
        DEFAULT_ACCELERATION, "rad/s² for every arm joint: one value or one per arm joint"
    )
    jerk: float | tuple[float, ...] = setting(
        DEFAULT_JERK, "rad/s³ for every arm joint: one value or one per arm joint"
    )
    gripper_min_width: float = setting(0.0, "m", low=0.0)
    gripper_max_width: float | None = setting(None, "m; None = the URDF's", low=0.0)
    gripper_acceleration: float = setting(GRIPPER_ACCELERATION, "m/s² of the width command")
    gripper_jerk: float = setting(GRIPPER_JERK, "m/s³ of the width command")

    def keywords(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SafetyLimits:
    """Per-joint limits, ordered as `joint_names` (arm joints, then `GRIPPER`).

    `lower`/`upper` already include the margin: they are the positions the filter may output.
    """

    joint_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    velocity: tuple[float, ...]
    acceleration: tuple[float, ...]
    jerk: tuple[float, ...]
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for f in fields(self)[1:6]:
            values = getattr(self, f.name)
            if len(values) != n or not all(np.isfinite(values)):
                raise ValueError(f"{f.name}: need {n} finite values, got {values!r}")
        for f in fields(self)[3:6]:
            if min(getattr(self, f.name)) <= 0:
                raise ValueError(f"{f.name} limits must be positive")
        bad = [
            j for j, lo, hi in zip(self.joint_names, self.lower, self.upper, strict=True) if lo > hi
        ]
        if bad:
            raise ValueError(f"margin leaves no room to move for {bad}")

    @property
    def gripper_width_range(self) -> tuple[float, float]:
        i = self.joint_names.index(GRIPPER)
        return self.lower[i], self.upper[i]

    def arrays(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The limits of `names`, in that order, as float64 arrays; unknown names raise."""
        unknown = [n for n in names if n not in self.joint_names]
        if unknown:
            raise ValueError(f"no limits for joints {unknown}")
        idx = [self.joint_names.index(n) for n in names]
        return {
            f.name: np.array(getattr(self, f.name), dtype=np.float64)[idx]
            for f in fields(self)[1:6]
        }

    @classmethod
    def from_robot(
        cls,
        description: RobotDescription,
        margin: float = DEFAULT_MARGIN,
        velocity_scale: float = 1.0,
        acceleration: float | Sequence[float] = DEFAULT_ACCELERATION,
        jerk: float | Sequence[float] = DEFAULT_JERK,
        gripper_min_width: float = 0.0,
        gripper_max_width: float | None = None,
        gripper_acceleration: float = GRIPPER_ACCELERATION,
        gripper_jerk: float = GRIPPER_JERK,
    ) -> SafetyLimits:
        """Limits from the URDF, tightened by `margin` and `velocity_scale`.

        `acceleration` and `jerk` are one value for every arm joint or one per arm joint.
        The margin is in radians, so it applies to the arm only; the gripper keeps its range.
        """
        if not 0 < velocity_scale <= 1:
            raise ValueError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
        n = len(description.arm)
        acc = np.broadcast_to(np.asarray(acceleration, dtype=np.float64), (n,))
        jrk = np.broadcast_to(np.asarray(jerk, dtype=np.float64), (n,))
        max_width = (
            description.gripper_max_width if gripper_max_width is None else gripper_max_width
        )
        gripper_velocity = sum(f.max_velocity for f in description.fingers)
        return cls(
            joint_names=(*description.arm_joint_names, GRIPPER),
            lower=(*(j.lower + margin for j in description.arm), float(gripper_min_width)),
            upper=(*(j.upper - margin for j in description.arm), float(max_width)),
            velocity=tuple(float(j.max_velocity * velocity_scale) for j in description.arm)
            + (gripper_velocity * velocity_scale,),
            acceleration=(*map(float, acc), float(gripper_acceleration)),
            jerk=(*map(float, jrk), float(gripper_jerk)),
            margin=float(margin),
        )

    @classmethod
    def from_dict(cls, description: RobotDescription, config: Mapping[str, object]) -> SafetyLimits:
        """`from_robot` driven by a config mapping (a YAML `limits:` section), loaded strictly
        through `LimitSettings`: a typo cannot silently leave a limit at its default."""
        settings = load(LimitSettings, config, "limits")
        return cls.from_robot(description, **settings.keywords())  # type: ignore[arg-type]
