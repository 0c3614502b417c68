"""Everything the safety filter enforces, in one config: `config/safety/<robot>.yaml`.

`SafetyConfig.for_robot(name)` is THE default safety configuration: the robot's YAML, which
alone states its workspace box and obstacles. The code defaults (`SafetyConfig()`) are joint
limits only, for no robot in particular. Loading goes through `settings.load`, so unknown keys
are errors everywhere and a typo cannot silently leave a limit at its default. The watchdog
timeouts are not here: they belong to the control loop's `control:` block
(`runtime.controller.ControlConfig`), which owns the clock they are measured on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from robot_policy import settings
from robot_policy.robots import DEFAULT_ROBOT, ROBOTS, RobotDescription, load_robot
from robot_policy.robots.kinematics import Kinematics
from robot_policy.safety.arm_model import inertia_proxy, lever_arms
from robot_policy.safety.barrier import DEFAULT_ALPHA, DEFAULT_SLACK_WEIGHT, CartesianBarrierFilter
from robot_policy.safety.energy import EnergyTank
from robot_policy.safety.filter import SafetyFilter
from robot_policy.safety.limits import GRIPPER, LimitSettings, SafetyLimits
from robot_policy.safety.links import LinkSphere, collision_links, fit_spheres, tracked
from robot_policy.safety.speed import SpeedCap, SpeedMonitor, SpeedSettings
from robot_policy.safety.watchdog import HOLD_TIMEOUT, STOP_TIMEOUT
from robot_policy.safety.workspace import BarrierSet, Box, Obstacle, Plane, Sphere, WorkspaceBox
from robot_policy.settings import config_path, setting

DEFAULT_OBSTACLE_MARGIN = 0.02  # m kept from obstacles, as MoveIt's scene proximity default
# m between every link sphere and every obstacle: less than the end effector's, because the
# spheres already contain the links' collision meshes (which pad the real links, too).
DEFAULT_LINK_MARGIN = 0.01
DEFAULT_LINK_SPHERES = 3
OBSTACLE_FIELDS = {
    "sphere": frozenset({"center", "radius"}),
    "box": frozenset({"low", "high"}),
    "plane": frozenset({"point", "normal"}),
}


def _limit_defaults() -> Mapping[str, Any]:
    """`LimitSettings`' defaults: the `limits:` section's defaults."""
    return MappingProxyType(LimitSettings().keywords())


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
class LinksConfig:
    """The whole-arm keep-out (links.py): the links `names` (None: every link an arm joint moves
    that has collision geometry), each covered by `spheres` spheres fitted to its collision
    mesh, stay `margin` m from every obstacle (not the workspace box). `radius` "auto" keeps
    the fitted radii; {link: m} sets every sphere of a link to m."""

    names: tuple[str, ...] | None = setting(
        None, "links kept out of the obstacles; null = every moving link with collision geometry"
    )
    spheres: int = setting(DEFAULT_LINK_SPHERES, "spheres per link (1-8), fitted to its mesh")
    radius: str | Mapping[str, float] = setting(
        "auto", "auto: fitted to the collision mesh; or {link: m} for a link's spheres"
    )
    margin: float = setting(DEFAULT_LINK_MARGIN, "m kept between every link sphere and obstacle")

    def __post_init__(self) -> None:
        if not 1 <= self.spheres <= 8:
            raise ValueError(f"links: spheres must be 1 to 8 per link, got {self.spheres}")
        if not self.margin >= 0:
            raise ValueError(f"links: margin must be >= 0, got {self.margin}")
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise ValueError(f"links: names repeat a link: {self.names}")
        if isinstance(self.radius, str):
            if self.radius != "auto":
                raise ValueError(f"links: radius must be auto or {{link: m}}, got {self.radius!r}")
        elif not all(r > 0 for r in self.radius.values()):
            raise ValueError(f"links: radii must be positive, got {dict(self.radius)}")

    def spheres_for(self, description: RobotDescription) -> tuple[LinkSphere, ...]:
        """The covering spheres of the links, with `radius` applied."""
        names = collision_links(description) if self.names is None else self.names
        radius = {} if isinstance(self.radius, str) else self.radius
        stray = sorted(set(radius) - set(names))
        if stray:
            raise ValueError(f"links: radius names links that are not kept out: {stray}")
        try:
            fitted = fit_spheres(description, tuple(names), self.spheres)
        except ValueError as err:
            raise ValueError(f"links: {err}") from err
        return tuple(LinkSphere(s.link, s.center, radius.get(s.link, s.radius)) for s in fitted)


@dataclass(frozen=True)
class SafetyConfig:
    """Limits (`SafetyLimits.from_robot`'s keywords), the workspace box (None: none), named
    obstacles, the barrier parameters, the optional whole-arm keep-out and energy tank, and
    the speed cap and monitor, for one robot."""

    robot: str = DEFAULT_ROBOT
    limits: Mapping[str, Any] = field(default_factory=_limit_defaults)
    workspace: WorkspaceBox | None = None
    obstacles: tuple[tuple[str, Obstacle], ...] = ()
    obstacle_margin: float = DEFAULT_OBSTACLE_MARGIN
    alpha: float = DEFAULT_ALPHA
    slack_weight: float = DEFAULT_SLACK_WEIGHT
    links: LinksConfig | None = None
    energy: EnergyConfig | None = None
    speed: SpeedSettings = field(default_factory=SpeedSettings)

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise ValueError(f"unknown robot {self.robot!r}; known: {sorted(ROBOTS)}")
        self.joint_limits()  # validates the limits section against the URDF
        BarrierSet(self.workspace, self.obstacles, self.obstacle_margin)  # names, margin
        if self.links is not None:
            self.links.spheres_for(self.description)  # link names, radii
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
            # The links only need tracking when there is something to keep them out of.
            spheres = self.links.spheres_for(robot) if self.links and self.obstacles else ()
            points, bodies = tracked(robot, spheres)
            margin = self.links.margin if self.links else 0.0
            barriers = CartesianBarrierFilter(
                Kinematics(robot, points),
                BarrierSet(self.workspace, self.obstacles, self.obstacle_margin, bodies, margin),
                robot.arm_joint_names,
                lever_arms(robot, points),
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
        speed = None
        if arm == list(robot.arm_joint_names):  # the cap's Jacobian columns are in URDF order
            velocity = limits.arrays(robot.arm_joint_names)["velocity"]
            speed = SpeedCap(Kinematics(robot), velocity, self.speed.tcp_limit)
        elif self.speed.tcp_limit is not None:
            raise ValueError(f"speed.tcp_limit needs the arm joints in URDF order, got {arm}")
        return SafetyFilter(
            limits,
            joint_names,
            dt,
            hold_timeout,
            stop_timeout,
            barriers=barriers,
            energy=energy,
            speed=speed,
        )

    def build_monitor(self, safety_filter: SafetyFilter) -> SpeedMonitor:
        """The monitor of the measured speed for a filter `build_filter` made: it compares
        with the URDF's velocity limits (the hardware's, without `velocity_scale`) and slows
        the filter's speed cap."""
        if safety_filter.speed is None:
            raise ValueError("the filter has no speed cap: build it with build_filter")
        robot = self.description
        arm = robot.arm_joint_names
        hardware = SafetyLimits.from_robot(robot).arrays(arm)["velocity"]
        acceleration = self.joint_limits().arrays(arm)["acceleration"]
        return SpeedMonitor(
            Kinematics(robot), hardware, acceleration, arm, safety_filter.speed, self.speed
        )

    @classmethod
    def for_robot(cls, name: str = DEFAULT_ROBOT) -> SafetyConfig:
        """The robot's default safety configuration, `config/safety/<name>.yaml`: what every
        path (control_node, eval, collect, bench loop) runs unless told otherwise."""
        return cls.from_yaml(config_path("safety", f"{name}.yaml"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SafetyConfig:
        """A safety YAML; every error names the file and the value's dotted path."""
        return cls.from_sections(settings.from_yaml(SafetySections, path), str(path))

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> SafetyConfig:
        """Sections: robot, limits (`LimitSettings`), workspace {low, high} or null,
        obstacles [{type: sphere|box|plane, name, ...}], barrier {margin, alpha,
        slack_weight}, links {names, spheres, radius, margin} or null, energy {capacity,
        refill_rate, inertia} or null, speed (`SpeedSettings`)."""
        return cls.from_sections(settings.load(SafetySections, config, ""))

    @classmethod
    def from_sections(cls, s: SafetySections, where: str = "") -> SafetyConfig:
        try:
            return cls(
                robot=s.robot,
                limits=MappingProxyType(s.limits.keywords()),
                workspace=None if s.workspace is None else WorkspaceBox(*s.workspace.corners()),
                obstacles=tuple(_obstacle(i, spec) for i, spec in enumerate(s.obstacles)),
                obstacle_margin=s.barrier.margin,
                alpha=s.barrier.alpha,
                slack_weight=s.barrier.slack_weight,
                links=s.links,
                energy=s.energy,
                speed=s.speed,
            )
        except ValueError as err:
            raise settings.problem(where, str(err)) from err


Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class BoxSettings:
    """The `workspace:` section: the end effector stays inside [low, high] (m, base frame)."""

    low: Vec3
    high: Vec3

    def corners(self) -> tuple[Vec3, Vec3]:
        return _vec3(self.low, "workspace.low"), _vec3(self.high, "workspace.high")


@dataclass(frozen=True)
class BarrierSettings:
    """The `barrier:` section: how the Cartesian barriers behave."""

    margin: float = setting(DEFAULT_OBSTACLE_MARGIN, "m kept from obstacles", low=0.0)
    alpha: float = setting(
        DEFAULT_ALPHA, "1/s (> 0): a barrier closes by at most alpha*dt of itself per tick"
    )
    slack_weight: float = setting(
        DEFAULT_SLACK_WEIGHT, "QP penalty (> 0) that keeps conflicting barriers solvable"
    )


@dataclass(frozen=True)
class SafetySections:
    """A safety YAML as written (`SafetyConfig` is what the filter is built from)."""

    robot: str = setting(DEFAULT_ROBOT, "robot description name (robot_policy.robots)")
    limits: LimitSettings = field(default_factory=LimitSettings)
    workspace: BoxSettings | None = setting(None, "end-effector box {low, high}; null = none")
    obstacles: tuple[Mapping[str, Any], ...] = setting(
        (), "keep-out shapes: sphere {center, radius}, box {low, high}, plane {point, normal}"
    )
    barrier: BarrierSettings = field(default_factory=BarrierSettings)
    links: LinksConfig | None = setting(None, "whole-arm keep-out; null = end effector only")
    energy: EnergyConfig | None = setting(None, "energy tank; null = off")
    speed: SpeedSettings = field(default_factory=SpeedSettings)


def _vec3(values: object, where: str) -> Vec3:
    array = np.asarray(values, dtype=float)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise settings.problem(where, f"must be 3 finite numbers, got {values!r}")
    return tuple(float(v) for v in array)


def _obstacle(index: int, spec: Mapping[str, Any]) -> tuple[str, Obstacle]:
    """One entry of `obstacles:`, a tagged union on `type` (hence not a plain dataclass)."""
    where = f"obstacles[{index}]"
    kind = spec.get("type")
    if kind not in OBSTACLE_FIELDS:
        raise settings.problem(
            f"{where}.type", f"must be one of {sorted(OBSTACLE_FIELDS)}, got {kind!r}"
        )
    settings.check_keys(spec, OBSTACLE_FIELDS[kind] | {"type", "name"}, where)
    missing = sorted(OBSTACLE_FIELDS[kind] - set(spec))
    if missing:
        raise settings.problem(f"{where}.{missing[0]}", "is required")
    name = spec.get("name", f"{kind}{index}")
    if not isinstance(name, str):
        raise settings.problem(f"{where}.name", f"must be a string, got {name!r}")
    vec = {k: _vec3(spec[k], f"{where}.{k}") for k in OBSTACLE_FIELDS[kind] if k != "radius"}
    if kind == "sphere":
        radius = settings.coerce(spec["radius"], float, f"{where}.radius")
        if not radius > 0:
            raise settings.problem(f"{where}.radius", f"must be > 0, got {radius}")
        return name, Sphere(vec["center"], radius)
    if kind == "box":
        if not all(lo < hi for lo, hi in zip(vec["low"], vec["high"], strict=True)):
            raise settings.problem(where, "low must be below high")
        return name, Box(vec["low"], vec["high"])
    if not np.linalg.norm(vec["normal"]) > 0:
        raise settings.problem(f"{where}.normal", "must be non-zero")
    return name, Plane(vec["point"], vec["normal"])
