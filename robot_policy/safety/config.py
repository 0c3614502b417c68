"""Everything the safety filter enforces, in one config: `config/safety/<robot>.yaml`.

The code defaults are the Panda's and equal config/safety/panda.yaml (a test keeps them in
sync). Unknown keys are errors everywhere, so a typo cannot silently leave a limit at its
default. The watchdog timeouts are not here: they belong to the control loop's `control:` block
(`runtime.controller.ControlConfig`), which owns the clock they are measured on.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from robot_policy.robots import DEFAULT_ROBOT, ROBOTS, RobotDescription, load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety.arm_model import inertia_proxy, lever_arms
from robot_policy.safety.barrier import DEFAULT_ALPHA, DEFAULT_SLACK_WEIGHT, CartesianBarrierFilter
from robot_policy.safety.energy import EnergyTank
from robot_policy.safety.filter import SafetyFilter
from robot_policy.safety.limits import GRIPPER, SafetyLimits
from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT
from robot_policy.safety.workspace import BarrierSet, Box, Obstacle, Plane, Sphere, WorkspaceBox
from robot_policy.settings import config_path

DEFAULT_OBSTACLE_MARGIN = 0.02  # m kept from obstacles, as MoveIt's scene proximity default
# The Panda's base sits at the origin on the table top. The box keeps the hand in front of the
# base (x >= 0.15 clears the robot's own column) and within comfortable reach.
PANDA_WORKSPACE = WorkspaceBox((0.15, -0.5, 0.0), (0.8, 0.5, 0.8))
TABLE = ("table", Plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0)))


def _limit_defaults() -> Mapping[str, Any]:
    """`SafetyLimits.from_robot`'s keyword defaults: the `limits:` section's defaults."""
    parameters = inspect.signature(SafetyLimits.from_robot).parameters
    return MappingProxyType({k: p.default for k, p in parameters.items() if k != "description"})


@dataclass(frozen=True)
class EnergyConfig:
    """The energy tank (energy.py): `capacity` J of burst, `refill_rate` W sustained;
    `inertia` per arm joint (kg·m²), None = the URDF's mass-matrix diagonal at home."""

    capacity: float
    refill_rate: float
    inertia: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (self.capacity > 0 and self.refill_rate >= 0):
            raise ValueError("energy: capacity must be positive and refill_rate non-negative")
        if self.inertia is not None and not all(m > 0 for m in self.inertia):
            raise ValueError(f"energy: inertia must be positive, got {self.inertia}")


@dataclass(frozen=True)
class SafetyConfig:
    """Limits (`SafetyLimits.from_robot`'s keywords), the workspace box (None: none), named
    obstacles, the barrier parameters and the optional energy tank, for one robot."""

    robot: str = "panda"
    limits: Mapping[str, Any] = field(default_factory=_limit_defaults)
    workspace: WorkspaceBox | None = PANDA_WORKSPACE
    obstacles: tuple[tuple[str, Obstacle], ...] = (TABLE,)
    obstacle_margin: float = DEFAULT_OBSTACLE_MARGIN
    alpha: float = DEFAULT_ALPHA
    slack_weight: float = DEFAULT_SLACK_WEIGHT
    energy: EnergyConfig | None = None

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise ValueError(f"unknown robot {self.robot!r}; known: {sorted(ROBOTS)}")
        self.joint_limits()  # validates the limits section against the URDF
        BarrierSet(self.workspace, self.obstacles, self.obstacle_margin)  # names, margin
        if not (self.alpha > 0 and self.slack_weight > 0):
            raise ValueError("alpha and slack_weight must be positive")
        inertia = self.energy.inertia if self.energy is not None else None
        if inertia is not None and len(inertia) != len(self.description.arm):
            raise ValueError(f"energy: need one inertia per arm joint, got {inertia}")

    @property
    def description(self) -> RobotDescription:
        return load_robot(self.robot)

    @property
    def has_cartesian_stage(self) -> bool:
        return self.workspace is not None or bool(self.obstacles) or self.energy is not None

    def joint_limits(self) -> SafetyLimits:
        return SafetyLimits.from_dict(self.description, self.limits)

    def build_filter(
        self,
        joint_names: Sequence[str],
        dt: float,
        hold_timeout: float = HOLD_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> SafetyFilter:
        """The composed filter for `joint_names` at tick `dt`."""
        robot = self.description
        limits = self.joint_limits()
        arm = [n for n in joint_names if n != GRIPPER]
        if self.has_cartesian_stage and arm != robot.arm_joint_names:
            raise ValueError(
                f"the Cartesian stage needs the arm joints in URDF order {robot.arm_joint_names}, "
                f"got {arm}"
            )
        barriers = None
        if self.workspace is not None or self.obstacles:
            barriers = CartesianBarrierFilter(
                Kinematics(robot),
                BarrierSet(self.workspace, self.obstacles, self.obstacle_margin),
                robot.arm_joint_names,
                lever_arms(robot),
                limits.arrays(robot.arm_joint_names)["acceleration"],
                dt,
                self.alpha,
                self.slack_weight,
            )
        energy = None
        if self.energy is not None:
            inertia = self.energy.inertia
            energy = EnergyTank(
                inertia_proxy(robot) if inertia is None else inertia,
                self.energy.capacity,
                self.energy.refill_rate,
            )
        return SafetyFilter(
            limits, joint_names, dt, hold_timeout, stop_timeout, barriers=barriers, energy=energy
        )

    @classmethod
    def for_robot(cls, name: str = DEFAULT_ROBOT) -> SafetyConfig:
        """The robot's default safety configuration, `config/safety/<name>.yaml`: what every
        path (control_node, eval, collect, bench loop) runs unless told otherwise."""
        return cls.from_yaml(config_path("safety", f"{name}.yaml"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SafetyConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from err

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> SafetyConfig:
        """Sections: robot, limits (`SafetyLimits.from_robot`'s keywords), workspace {low,
        high} or null, obstacles [{type: sphere|box|plane, name, ...}], barrier {margin, alpha,
        slack_weight}, energy {capacity, refill_rate, inertia} or null."""
        _reject_unknown(
            config, {"robot", "limits", "workspace", "obstacles", "barrier", "energy"}, "safety"
        )
        defaults = cls()
        limits = config.get("limits", {})
        _reject_unknown(limits, set(defaults.limits), "limits")
        barrier = config.get("barrier", {})
        _reject_unknown(barrier, {"margin", "alpha", "slack_weight"}, "barrier")
        workspace = config.get("workspace", defaults.workspace)
        if isinstance(workspace, Mapping):
            _reject_unknown(workspace, {"low", "high"}, "workspace", frozenset({"low", "high"}))
            workspace = WorkspaceBox(_vec3(workspace["low"]), _vec3(workspace["high"]))
        obstacles = defaults.obstacles
        if "obstacles" in config:
            obstacles = tuple(_obstacle(i, s) for i, s in enumerate(config["obstacles"] or []))
        energy = config.get("energy")
        if energy is not None:
            required = frozenset({"capacity", "refill_rate"})
            _reject_unknown(energy, required | {"inertia"}, "energy", required)
            inertia = energy.get("inertia")
            energy = EnergyConfig(
                float(energy["capacity"]),
                float(energy["refill_rate"]),
                None if inertia is None else tuple(float(v) for v in inertia),
            )
        return cls(
            robot=str(config.get("robot", defaults.robot)),
            limits=MappingProxyType({**defaults.limits, **limits}),
            workspace=workspace,
            obstacles=obstacles,
            obstacle_margin=float(barrier.get("margin", defaults.obstacle_margin)),
            alpha=float(barrier.get("alpha", defaults.alpha)),
            slack_weight=float(barrier.get("slack_weight", defaults.slack_weight)),
            energy=energy,
        )


def _vec3(values: object) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=float)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"need 3 finite numbers, got {values!r}")
    return tuple(float(v) for v in array)


def _reject_unknown(
    config: object, known: set[str], what: str, required: frozenset[str] = frozenset()
) -> None:
    if not isinstance(config, Mapping):
        raise ValueError(f"{what}: expected a mapping, got {config!r}")
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    missing = required - set(config)
    if missing:
        raise ValueError(f"{what}: missing keys {sorted(missing)}")


def _obstacle(index: int, spec: object) -> tuple[str, Obstacle]:
    fields = {
        "sphere": frozenset({"center", "radius"}),
        "box": frozenset({"low", "high"}),
        "plane": frozenset({"point", "normal"}),
    }
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in fields:
        raise ValueError(f"obstacle {index}: type must be one of {sorted(fields)}, got {kind!r}")
    _reject_unknown(spec, fields[kind] | {"type", "name"}, f"obstacle {index}", fields[kind])
    name = str(spec.get("name", f"{kind}{index}"))
    if kind == "sphere":
        radius = float(spec["radius"])
        if not radius > 0:
            raise ValueError(f"obstacle {name}: radius must be positive")
        return name, Sphere(_vec3(spec["center"]), radius)
    if kind == "box":
        low, high = _vec3(spec["low"]), _vec3(spec["high"])
        if not all(lo < hi for lo, hi in zip(low, high, strict=True)):
            raise ValueError(f"obstacle {name}: low must be below high")
        return name, Box(low, high)
    normal = _vec3(spec["normal"])
    if not np.linalg.norm(normal) > 0:
        raise ValueError(f"obstacle {name}: normal must be non-zero")
    return name, Plane(_vec3(spec["point"]), normal)
