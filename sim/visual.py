"""Visual domain randomization: one episode's light, colours and camera directions, and noise.

Image policies must survive a real camera, whose lighting, colours and mounting never match the
sim's; these draws vary what a frame looks like and nothing else. They come from a generator the
env spawns from its own at each reset, so switching them on leaves every physics draw (layouts,
state noise, later unseeded episodes) exactly as without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .camera import NOMINAL_LIGHT, Light
from .randomization import RandomizationConfig
from .scene import CUBE_RGBA, TABLE_RGBA

RGBA = tuple[float, float, float, float]


@dataclass(frozen=True)
class Look:
    """What one episode looks like; a colour of None keeps the one the scene was built with."""

    light: Light = NOMINAL_LIGHT
    table_rgba: RGBA | None = None
    cube_rgba: RGBA | None = None


def draw_look(rng: np.random.Generator, cfg: RandomizationConfig) -> Look:
    """The episode's light and colours; a setting that is off draws nothing."""
    light = NOMINAL_LIGHT
    if cfg.light_direction_jitter > 0:
        direction = tilt(np.array(light.direction), cfg.light_direction_jitter, rng)
        light = replace(light, direction=tuple(direction.tolist()))
    if cfg.light_color_jitter > 0:
        scale = 1.0 + rng.uniform(-cfg.light_color_jitter, cfg.light_color_jitter, 5)
        light = replace(
            light,
            color=tuple((np.array(light.color) * scale[:3]).tolist()),
            ambient=light.ambient * float(scale[3]),
            diffuse=light.diffuse * float(scale[4]),
        )
    table_rgba = None if cfg.table_rgb is None else (*cfg.table_rgb, 1.0)
    if cfg.table_color_jitter > 0:
        table_rgba = _scaled(table_rgba or TABLE_RGBA, cfg.table_color_jitter, rng)
    cube_rgba = None
    if cfg.cube_color_jitter > 0:
        cube_rgba = _scaled(CUBE_RGBA, cfg.cube_color_jitter, rng)
    return Look(light, table_rgba, cube_rgba)


def tilt(vector: np.ndarray, max_angle: float, rng: np.random.Generator) -> np.ndarray:
    """`vector` turned by an angle drawn from [0, max_angle] (rad) about a random axis at right
    angles to it: the same tilt whichever way the vector points, so it suits a light and a
    camera alike."""
    unit = vector / np.linalg.norm(vector)
    helper = np.array([1.0, 0.0, 0.0]) if abs(unit[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(unit, helper)
    first /= np.linalg.norm(first)
    second = np.cross(unit, first)
    heading = rng.uniform(0.0, 2 * math.pi)
    axis = math.cos(heading) * first + math.sin(heading) * second
    angle = rng.uniform(0.0, max_angle)
    # Rodrigues' formula; its (axis . vector) term vanishes because the axis is perpendicular.
    return vector * math.cos(angle) + np.cross(axis, vector) * math.sin(angle)


def add_noise(frame: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """`frame` (uint8) plus gaussian noise of `std` levels, rounded and clipped to 0..255."""
    noisy = frame + rng.normal(0.0, std, frame.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _scaled(rgba: RGBA, jitter: float, rng: np.random.Generator) -> RGBA:
    rgb = np.clip(np.array(rgba[:3]) * (1.0 + rng.uniform(-jitter, jitter, 3)), 0.0, 1.0)
    return (*rgb.tolist(), rgba[3])
