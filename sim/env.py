"""The gymnasium env shared by all tasks: joint-position actions in, LeRobot-named features out.

Episodes never terminate (`terminated` is always False): a recorder decides how long to keep
filming after `info["is_success"]` turns True, and rollouts have one length per task. They are
truncated after `max_episode_steps` policy steps. The reward is 1.0 on steps where the task is
solved, else 0.0.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robot_policy.features import ENV_STATE_KEY, IMAGE_KEY, STATE_KEY
from robot_policy.robots import DEFAULT_ROBOT, RobotDescription, load_robot

from . import camera
from .randomization import RandomizationConfig
from .scene import CUBE_MASS, FRICTION, PHYSICS_HZ, Scene
from .tasks import TASK_SPECS, TASKS, Layout
from .visual import Look, add_noise, draw_look, tilt

STATE_BOUND = 2 * np.pi  # finite Box bounds that hold every joint angle and gripper width
ENV_STATE_BOUND = 10.0  # m; the floor under the table keeps every position far inside


class ArmEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """An arm (the Panda by default) on a table doing one of `TASKS`; build it with `make_env`,
    which takes these arguments after `task` (as keywords) and records them in the env's spec.

    cameras: any of "front", "wrist"; image_size: (height, width); control_hz: policy steps per
    second, a whole divisor of the 240 Hz physics rate; max_episode_steps: None takes the task's
    default (reach 5 s, push 12 s, lift 10 s); visual: "simple" draws the robot with its collision
    meshes (fast), "full" with its detailed meshes; robot: a name from `robot_policy.robots`.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        task: str,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (96, 96),
        control_hz: float = 10.0,
        randomization: RandomizationConfig | dict | None = None,
        max_episode_steps: int | None = None,
        visual: str = "simple",
        robot: str = DEFAULT_ROBOT,
    ) -> None:
        if task not in TASK_SPECS:
            raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
        unknown = [c for c in cameras if c not in camera.CAMERAS]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; choose from {tuple(camera.CAMERAS)}")
        substeps = PHYSICS_HZ / control_hz
        if control_hz <= 0 or substeps != round(substeps) or control_hz != round(control_hz):
            raise ValueError(
                f"control_hz must be a whole divisor of {PHYSICS_HZ}, got {control_hz}"
            )
        if isinstance(randomization, dict):
            randomization = RandomizationConfig.from_dict(randomization)
        self.task = TASK_SPECS[task]
        self.randomization = randomization or RandomizationConfig()
        self.robot: RobotDescription = load_robot(robot)
        self.robot_type = self.robot.name
        self.fps = int(control_hz)
        self.substeps = int(round(substeps))
        self.max_episode_steps = max_episode_steps or round(self.task.episode_seconds * self.fps)
        self.task_description = self.task.description
        self.cameras = tuple(dict.fromkeys(cameras))
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.scene = Scene(
            self.robot,
            cube=self.task.cube,
            target=self.task.target,
            target_radius=self.task.target_radius,
            visual=visual,
        )
        self._projections = {
            name: camera.projection_matrix(camera.CAMERAS[name], *self.image_size)
            for name in self.cameras
        }
        self.action_space = spaces.Box(
            low=np.append(self.robot.arm_lower, 0.0).astype(np.float32),
            high=np.append(self.robot.arm_upper, self.robot.gripper_max_width).astype(np.float32),
            dtype=np.float32,
        )
        n_env = len(self.task.state_names)
        obs_spaces: dict[str, spaces.Space] = {
            STATE_KEY: spaces.Box(-STATE_BOUND, STATE_BOUND, (8,), np.float32),
            ENV_STATE_KEY: spaces.Box(-ENV_STATE_BOUND, ENV_STATE_BOUND, (n_env,), np.float32),
        }
        for name in self.cameras:
            obs_spaces[IMAGE_KEY.format(name)] = spaces.Box(0, 255, (*self.image_size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)
        joint_names = self.robot.command_names
        self.features: dict[str, dict[str, Any]] = {
            STATE_KEY: {"dtype": "float32", "shape": [8], "names": joint_names},
            ENV_STATE_KEY: {
                "dtype": "float32",
                "shape": [n_env],
                "names": list(self.task.state_names),
            },
            **{
                IMAGE_KEY.format(name): {
                    "dtype": "image",
                    "shape": [*self.image_size, 3],
                    "names": ["height", "width", "channels"],
                }
                for name in self.cameras
            },
            "action": {"dtype": "float32", "shape": [8], "names": joint_names},
        }
        self.layout: Layout | None = None
        self._views: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._look = Look()
        self._visual_rng = np.random.default_rng(0)  # replaced at every reset
        self._pending: deque[np.ndarray] = deque()
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; `options` is accepted for the gymnasium API and holds nothing yet.

        The generator is re-seeded only when a seed is given, so successive unseeded resets
        continue one random stream. Visual draws use a generator spawned from it (`sim.visual`).
        """
        super().reset(seed=seed)
        rng, cfg = self.np_random, self.randomization
        self._visual_rng = rng.spawn(1)[0]  # spawning leaves `rng`'s own stream where it was
        scene = self.scene
        scene.rebuild()
        self._look = draw_look(self._visual_rng, cfg)
        if self._look.table_rgba is not None:
            scene.paint(scene.table, self._look.table_rgba)
        if self._look.cube_rgba is not None and scene.cube is not None:
            scene.paint(scene.cube, self._look.cube_rgba)
        self.layout = self.task.sample_layout(rng, cfg)
        home = np.array(self.robot.home)
        if cfg.home_joint_noise > 0:
            home = home + rng.uniform(-cfg.home_joint_noise, cfg.home_joint_noise, home.shape)
            home = np.clip(home, self.robot.arm_lower, self.robot.arm_upper)
        open_width = self.robot.gripper_max_width
        scene.reset_robot(home, open_width)
        if self.layout.cube is not None:
            scene.place_cube(*self.layout.cube)
            mass = rng.uniform(*cfg.cube_mass) if cfg.cube_mass else CUBE_MASS
            friction = rng.uniform(*cfg.friction) if cfg.friction else FRICTION
            scene.set_cube_dynamics(float(mass), float(friction))
        if self.layout.target is not None:
            scene.place_target(self.layout.target)
        self._views = {}
        for name in self.cameras:
            cam = camera.CAMERAS[name]
            eye, focus = np.array(cam.eye), np.array(cam.focus)
            if cfg.camera_jitter > 0 and cam.link is None:
                eye = eye + rng.uniform(-cfg.camera_jitter, cfg.camera_jitter, 3)
                focus = focus + rng.uniform(-cfg.camera_jitter, cfg.camera_jitter, 3)
            if cfg.camera_angle_jitter > 0 and cam.link is None:
                angle = np.radians(cfg.camera_angle_jitter)
                focus = eye + tilt(focus - eye, angle, self._visual_rng)
            self._views[name] = (eye, focus)
        hold = np.append(home, open_width).astype(np.float32)
        self._pending = deque([hold] * cfg.action_latency_steps)
        self._steps = 0
        return self._observation(), {"is_success": self.task.is_success(scene, self.layout)}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply joint targets (clipped to the joint limits) and advance one control period."""
        if self.layout is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape}, got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        self._pending.append(np.clip(action, self.action_space.low, self.action_space.high))
        applied = self._pending.popleft()
        self.scene.command(applied[:7], float(applied[7]))
        self.scene.step(self.substeps)
        self._steps += 1
        success = self.task.is_success(self.scene, self.layout)
        truncated = self._steps >= self.max_episode_steps
        return self._observation(), float(success), False, truncated, {"is_success": success}

    def _observation(self, render: bool = True) -> dict[str, np.ndarray]:
        joints = self.scene.joint_positions()
        state = np.append(joints[:7], joints[7:].sum()).astype(np.float32)
        if self.randomization.state_noise_std > 0:
            noise = self.np_random.normal(0.0, self.randomization.state_noise_std, state.shape)
            state = (state + noise).astype(np.float32)
        obs = {
            STATE_KEY: state,
            ENV_STATE_KEY: self.task.environment_state(self.scene, self.layout),
        }
        for name in self.cameras if render else ():
            obs[IMAGE_KEY.format(name)] = self.render_camera(name)
        return obs

    def render_camera(self, name: str) -> np.ndarray:
        """A fresh frame from one of the env's cameras, as in the observation."""
        cam = camera.CAMERAS[name]
        link_pose = None
        if cam.link == "hand":
            link_pose = self.scene.link_pose(self.scene.links[self.robot.hand_link_name])
        view = camera.view_matrix(cam, *self._views[name], link_pose)
        projection = self._projections[name]
        frame = camera.render(
            self.scene.client, view, projection, *self.image_size, self._look.light
        )
        if self.randomization.image_noise_std > 0:
            frame = add_noise(frame, self.randomization.image_noise_std, self._visual_rng)
        return frame

    def close(self) -> None:
        self.scene.close()
        super().close()
