"""Visual domain randomization: frames change, physics does not, and the seed decides everything."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pybullet as p
import pytest

from robot_policy.sim import RandomizationConfig, SimConfig, camera, make_env
from robot_policy.sim.scene import CUBE_RGBA, TABLE_RGBA
from robot_policy.sim.visual import draw_look, tilt

CONFIGS = Path(__file__).resolve().parents[1] / "config"
TRAINING = CONFIGS / "sim_visual_randomization.yaml"
SHIFT = CONFIGS / "sim_visual_shift.yaml"
LIGHT = CONFIGS / "sim_light_randomization.yaml"
SIZE = (64, 64)
VISUAL_FIELDS = {
    "light_direction_jitter",
    "light_color_jitter",
    "table_color_jitter",
    "table_rgb",
    "cube_color_jitter",
    "camera_angle_jitter",
    "image_noise_std",
    "camera_jitter",
}
PERTURBATIONS = [
    {"light_direction_jitter": 0.5},
    {"light_color_jitter": 0.2},
    {"table_color_jitter": 0.15},
    {"table_rgb": [0.45, 0.5, 0.62]},
    {"cube_color_jitter": 0.15},
    {"camera_angle_jitter": 2.0},
    {"image_noise_std": 3.0},
]


def episode(randomization=None, seed=0, cameras=("front",), steps=0, task="push"):
    """Observations of a reset and `steps` fixed-action steps."""
    env = make_env(task, randomization=randomization, cameras=cameras, image_size=SIZE)
    trace = [env.reset(seed=seed)[0]]
    action = np.append(np.array(env.robot.home) + 0.05, 0.02).astype(np.float32)
    trace += [env.step(action)[0] for _ in range(steps)]
    env.close()
    return trace


def frame_without_light_arguments(env, name):
    """A frame rendered the way the sim did before it passed a light: the renderer's defaults."""
    cam = camera.CAMERAS[name]
    link_pose = None
    if cam.link == "hand":
        link_pose = env.scene.link_pose(env.scene.links[env.robot.hand_link_name])
    view = camera.view_matrix(cam, np.array(cam.eye), np.array(cam.focus), link_pose)
    _, _, rgba, _, _ = p.getCameraImage(
        SIZE[1],
        SIZE[0],
        viewMatrix=view,
        projectionMatrix=camera.projection_matrix(cam, *SIZE),
        shadow=0,
        renderer=p.ER_TINY_RENDERER,
        flags=p.ER_NO_SEGMENTATION_MASK,
        physicsClientId=env.scene.client,
    )
    return np.asarray(rgba, dtype=np.uint8).reshape(*SIZE, 4)[:, :, :3]


def colour(env, body):
    return np.array(p.getVisualShapeData(body, physicsClientId=env.scene.client)[0][7])


def test_a_plain_env_renders_as_the_renderer_does_without_light_arguments():
    # The renderer keeps the last light it was given, so the reference frames come from an env
    # that has rendered nothing yet.
    reference = make_env("push", image_size=SIZE)
    reference.reset(seed=3)
    expected = {name: frame_without_light_arguments(reference, name) for name in camera.CAMERAS}
    reference.close()
    plain = episode(seed=3, cameras=tuple(camera.CAMERAS))[0]
    zeros = {name: 0.0 for name in VISUAL_FIELDS - {"table_rgb"}} | {"table_rgb": None}
    zeroed = episode(zeros, seed=3, cameras=tuple(camera.CAMERAS))[0]
    for name, frame in expected.items():
        key = f"observation.images.{name}"
        assert np.array_equal(plain[key], frame) and np.array_equal(zeroed[key], frame)


def test_the_nominal_light_is_the_default_and_another_light_changes_the_frame():
    env = make_env("push", cameras=("front",), image_size=SIZE)
    obs, _ = env.reset(seed=0)
    cam = camera.CAMERAS["front"]
    view = camera.view_matrix(cam, np.array(cam.eye), np.array(cam.focus))
    projection = camera.projection_matrix(cam, *SIZE)

    def frame(light):
        return camera.render(env.scene.client, view, projection, *SIZE, light)

    assert np.array_equal(frame(camera.NOMINAL_LIGHT), obs["observation.images.front"])
    for change in [{"direction": (-5.0, 200.0, -40.0)}, {"color": (1.0, 0.5, 0.5)}]:
        assert not np.array_equal(
            frame(replace(camera.NOMINAL_LIGHT, **change)), obs["observation.images.front"]
        )
    env.close()


@pytest.mark.parametrize("perturbation", PERTURBATIONS, ids=lambda d: next(iter(d)))
def test_each_perturbation_changes_frames_but_not_the_physics(perturbation):
    # State noise is on in both runs: the visual draws must not shift its stream either.
    base = {"state_noise_std": 0.01}
    plain = episode(base, steps=2)
    perturbed = episode(base | perturbation, steps=2)
    assert not np.array_equal(
        plain[0]["observation.images.front"], perturbed[0]["observation.images.front"]
    )
    for a, b in zip(plain, perturbed, strict=True):
        assert np.array_equal(a["observation.state"], b["observation.state"])
        assert np.array_equal(
            a["observation.environment_state"], b["observation.environment_state"]
        )


def test_camera_angle_jitter_turns_fixed_cameras_only():
    cameras = ("front", "wrist")
    plain = episode(cameras=cameras)[0]
    turned = episode({"camera_angle_jitter": 3.0}, cameras=cameras)[0]
    front, wrist = "observation.images.front", "observation.images.wrist"
    assert not np.array_equal(plain[front], turned[front])
    assert np.array_equal(plain[wrist], turned[wrist])


def test_tilt_turns_by_at_most_its_angle_and_keeps_the_length():
    rng = np.random.default_rng(0)
    angles = []
    for vector in rng.normal(size=(50, 3)):
        turned = tilt(vector, 0.3, rng)
        cosine = turned @ vector / (np.linalg.norm(turned) * np.linalg.norm(vector))
        angles.append(np.arccos(np.clip(cosine, -1.0, 1.0)))
        assert np.isclose(np.linalg.norm(turned), np.linalg.norm(vector))
    assert 0.0 < min(angles) and max(angles) <= 0.3 + 1e-9 and max(angles) > 0.2


def test_colours_follow_their_settings_and_the_cube_stays_red():
    cfg = {"cube_color_jitter": 0.5, "table_rgb": [0.2, 0.3, 0.4]}
    env = make_env("push", randomization=cfg, image_size=SIZE)
    cubes = []
    for seed in range(5):
        env.reset(seed=seed)
        assert np.allclose(colour(env, env.scene.table), [0.2, 0.3, 0.4, 1.0])
        red, green, blue, _ = cube = colour(env, env.scene.cube)
        assert red > 1.5 * max(green, blue)
        assert np.all(np.abs(cube[:3] / np.array(CUBE_RGBA[:3]) - 1.0) <= 0.5 + 1e-6)
        cubes.append(tuple(cube))
    assert len(set(cubes)) == 5
    env.close()
    plain = make_env("push", image_size=SIZE)
    plain.reset(seed=0)
    assert np.allclose(colour(plain, plain.scene.table), TABLE_RGBA)
    assert np.allclose(colour(plain, plain.scene.cube), CUBE_RGBA)
    plain.close()


def test_image_noise_is_gaussian_per_frame():
    clean = episode(cameras=("front",))[0]["observation.images.front"].astype(float)
    env = make_env(
        "push", randomization={"image_noise_std": 3.0}, cameras=("front",), image_size=SIZE
    )
    noisy = env.reset(seed=0)[0]["observation.images.front"]
    again = env.render_camera("front")
    env.close()
    unclipped = (clean > 20) & (clean < 235)
    assert 2.7 < (noisy - clean)[unclipped].std() < 3.3
    assert not np.array_equal(noisy, again)


def test_same_seed_gives_the_same_frames_and_other_seeds_other_draws():
    cfg = SimConfig.from_yaml(TRAINING).randomization
    cameras = ("front", "wrist")
    first, second = (
        episode(cfg, seed=4, cameras=cameras, steps=2),
        episode(cfg, seed=4, cameras=cameras, steps=2),
    )
    for a, b in zip(first, second, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    looks = [draw_look(np.random.default_rng(seed), cfg) for seed in range(5)]
    assert len({look.light for look in looks}) == 5
    assert len({look.table_rgba for look in looks}) == 5
    env = make_env("push", randomization=cfg, image_size=SIZE)
    tables = []
    for seed in (0, 1, 0, None):  # an unseeded reset continues the stream: a new draw again
        env.reset(seed=seed)
        tables.append(tuple(colour(env, env.scene.table)))
    env.close()
    assert tables[0] == tables[2] and len(set(tables)) == 3


@pytest.mark.parametrize(
    "values, match",
    [
        ({"light_direction_jitter": -0.1}, "light_direction_jitter: must be >= 0"),
        ({"light_color_jitter": -0.1}, "light_color_jitter: must be >= 0"),
        ({"light_color_jitter": 1.5}, "light_color_jitter: must be <= 1"),
        ({"table_color_jitter": -0.1}, "table_color_jitter: must be >= 0"),
        ({"cube_color_jitter": 0.6}, "cube_color_jitter: must be <= 0.5"),
        ({"camera_angle_jitter": -1.0}, "camera_angle_jitter: must be >= 0"),
        ({"image_noise_std": -3.0}, "image_noise_std: must be >= 0"),
        ({"table_rgb": [0.5, 1.2, 0.5]}, r"table_rgb\[1\]: must be <= 1"),
        ({"table_rgb": [0.5, 0.5]}, "table_rgb"),
        ({"table_rgb": "brown"}, "table_rgb: must be a list"),
    ],
)
def test_bad_visual_settings_are_rejected(values, match):
    with pytest.raises(ValueError, match=match):
        RandomizationConfig.from_dict(values)
    if not isinstance(values.get("table_rgb"), str):  # a dataclass built in code is checked too
        with pytest.raises(ValueError, match="table_rgb|jitter|noise"):
            RandomizationConfig(**values)


def changed_fields(profile: SimConfig) -> set[str]:
    """The randomization settings in which `profile` differs from config/sim.yaml."""
    nominal = SimConfig.from_yaml(CONFIGS / "sim.yaml").randomization
    return {
        name
        for name in vars(nominal)
        if getattr(profile.randomization, name) != getattr(nominal, name)
    }


def test_the_profiles_load_and_differ_from_sim_yaml_only_in_visual_settings():
    nominal = SimConfig.from_yaml(CONFIGS / "sim.yaml")
    for path in (TRAINING, SHIFT, LIGHT):
        profile = SimConfig.from_yaml(path)
        assert profile.episode_seconds == nominal.episode_seconds
        changed = changed_fields(profile)
        assert changed and changed <= VISUAL_FIELDS, path.name
        profile.make_env("push", cameras=("front",), image_size=SIZE).close()


def test_the_shift_holds_out_a_table_colour_and_keeps_the_episodes():
    training = SimConfig.from_yaml(TRAINING).randomization
    shift = SimConfig.from_yaml(SHIFT).randomization
    assert training.table_rgb is None and shift.table_color_jitter == 0.0
    low = np.array(TABLE_RGBA[:3]) * (1 - training.table_color_jitter)
    high = np.array(TABLE_RGBA[:3]) * (1 + training.table_color_jitter)
    held_out = np.array(shift.table_rgb)
    assert np.all((held_out < low) | (held_out > high))
    plain, shifted = episode(seed=2, steps=1), episode(shift, seed=2, steps=1)
    for a, b in zip(plain, shifted, strict=True):
        assert np.array_equal(
            a["observation.environment_state"], b["observation.environment_state"]
        )
        assert not np.array_equal(a["observation.images.front"], b["observation.images.front"])


def test_the_light_profile_varies_only_the_light():
    light = SimConfig.from_yaml(LIGHT)
    assert changed_fields(light) == {"light_direction_jitter", "light_color_jitter"}
    assert light.randomization.table_rgb is None
    assert light.randomization.table_color_jitter == 0.0
