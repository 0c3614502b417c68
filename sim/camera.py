"""Cameras: where they look from and how a frame is rendered.

Frames come from PyBullet's CPU TinyRenderer (no display, no GPU), without shadows or a
segmentation mask, both of which cost time and neither of which a policy reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera; `link` set means eye and focus are given in that robot link's frame."""

    eye: Vec3
    focus: Vec3
    up: Vec3
    fov_deg: float
    near: float = 0.01
    far: float = 3.0
    link: str | None = None  # "hand": rides on the robot's hand link; None: fixed in the world


CAMERAS: dict[str, Camera] = {
    # Across the table from the robot, looking down on where cubes and targets lie.
    "front": Camera(
        eye=(1.05, 0.0, 0.85), focus=(0.45, 0.0, 0.08), up=(0.0, 0.0, 1.0), fov_deg=50.0
    ),
    # On the hand beside the fingers, looking along them: what is about to be grasped.
    "wrist": Camera(
        eye=(0.07, 0.0, 0.0),
        focus=(0.0, 0.0, 0.2),
        up=(1.0, 0.0, 0.0),
        fov_deg=70.0,
        link="hand",
    ),
}


@dataclass(frozen=True)
class Light:
    """TinyRenderer's lighting. The defaults are what it uses when getCameraImage is given none
    (z-up world, TinyRendererVisualShapeConverter::render), so a nominal frame is unchanged.

    Every frame passes its light because the renderer keeps the last one it was given: a frame
    that passed none after a randomized one would still be lit by that one.
    """

    # Unnormalized as in the renderer's source: it normalizes, so the nominal one rounds alike.
    direction: Vec3 = (-50.0, 30.0, 100.0)
    color: Vec3 = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35


NOMINAL_LIGHT = Light()


def view_matrix(
    camera: Camera,
    eye: np.ndarray,
    focus: np.ndarray,
    link_pose: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[float]:
    """`eye`/`focus`: the camera's own or jittered; `link_pose` carries a link-mounted camera."""
    up = np.array(camera.up)
    if link_pose is not None:
        position, quat = link_pose
        rotation = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
        eye, focus, up = position + rotation @ eye, position + rotation @ focus, rotation @ up
    return list(p.computeViewMatrix(eye.tolist(), focus.tolist(), up.tolist()))


def projection_matrix(camera: Camera, height: int, width: int) -> list[float]:
    return list(
        p.computeProjectionMatrixFOV(camera.fov_deg, width / height, camera.near, camera.far)
    )


def render(
    client: int,
    view: list[float],
    projection: list[float],
    height: int,
    width: int,
    light: Light = NOMINAL_LIGHT,
) -> np.ndarray:
    """An RGB frame, uint8 (height, width, 3)."""
    _, _, rgba, _, _ = p.getCameraImage(
        width,
        height,
        viewMatrix=view,
        projectionMatrix=projection,
        lightDirection=list(light.direction),
        lightColor=list(light.color),
        lightAmbientCoeff=light.ambient,
        lightDiffuseCoeff=light.diffuse,
        shadow=0,
        renderer=p.ER_TINY_RENDERER,
        flags=p.ER_NO_SEGMENTATION_MASK,
        physicsClientId=client,
    )
    return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
