"""Preprocessing: undistortion lands points where OpenCV's camera model says, crops and resizes
give the policy's shape, and bad settings or frames fail with the reason."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from robot_policy.perception import (
    CameraCalibration,
    PreprocessConfig,
    Preprocessor,
    center_box,
)

ROOT = Path(__file__).resolve().parents[1]
K = [[300.0, 0.0, 320.0], [0.0, 300.0, 240.0], [0.0, 0.0, 1.0]]
PLUMB_BOB = [-0.3, 0.1, 0.001, -0.002, 0.0]


def calibration(distortion=(), model="plumb_bob", projection=None) -> CameraCalibration:
    return CameraCalibration(
        width=640,
        height=480,
        camera_matrix=np.array(K),
        distortion=np.array(distortion, dtype=float),
        distortion_model=model,
        projection=projection,
    )


def full_frame(cal: CameraCalibration) -> Preprocessor:
    """Undistortion only: the whole frame, no resize, so pixel positions can be compared."""
    return Preprocessor(PreprocessConfig((480, 640), crop=(0, 0, 640, 480), calibration=cal))


def bright_centroid(image: np.ndarray) -> np.ndarray:
    weights = image[..., 0].astype(float)
    ys, xs = np.indices(weights.shape)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def dot_at(pixel: np.ndarray) -> np.ndarray:
    """A small anti-aliased disc centred at a sub-pixel position."""
    image = np.zeros((480, 640, 3), np.uint8)
    shift = 4  # cv2.circle takes fixed-point coordinates with this many fractional bits
    centre = tuple(int(round(c * (1 << shift))) for c in pixel)
    cv2.circle(image, centre, 4 << shift, (255, 255, 255), -1, cv2.LINE_AA, shift)
    return image


def test_shipped_config_equals_the_defaults():
    shipped = PreprocessConfig.from_yaml(ROOT / "config" / "perception.yaml")
    defaults = PreprocessConfig()
    assert shipped.output_size == defaults.output_size == (96, 96)
    assert shipped.crop is defaults.crop is None
    assert shipped.calibration is defaults.calibration is None


def test_zero_distortion_is_the_identity_up_to_resize():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(full_frame(calibration()).process(image), image)

    undistorted = Preprocessor(PreprocessConfig(calibration=calibration())).process(image)
    plain = Preprocessor(PreprocessConfig()).process(image)
    expected = cv2.resize(image[:, 80:560], (96, 96), interpolation=cv2.INTER_AREA)
    assert np.array_equal(plain, expected)
    assert np.abs(undistorted.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    ("model", "coefficients", "projection"),
    [
        ("plumb_bob", PLUMB_BOB, None),
        # P's intrinsics differ from K: the undistorted image uses P, as image_proc does.
        (
            "plumb_bob",
            PLUMB_BOB,
            np.array([[240.0, 0, 300, 0], [0, 250.0, 230, 0], [0, 0, 1, 0]]),
        ),
        ("rational_polynomial", [-0.2, 0.05, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0], None),
        ("equidistant", [0.08, -0.02, 0.004, 0.0], None),
    ],
)
def test_a_distorted_point_is_moved_to_where_the_camera_model_puts_it(
    model, coefficients, projection
):
    cal = calibration(coefficients, model, projection)
    normalized = np.array([[[0.6, 0.45]]])  # x/z, y/z of a point in the camera frame
    if model == "equidistant":
        distorted = cv2.fisheye.distortPoints(normalized, cal.camera_matrix, cal.distortion)
    else:
        point = np.array([[0.6, 0.45, 1.0]])
        distorted, _ = cv2.projectPoints(
            point, np.zeros(3), np.zeros(3), cal.camera_matrix, cal.distortion
        )
    distorted = distorted.reshape(2)
    ideal = (cal.rectified_matrix @ np.array([0.6, 0.45, 1.0]))[:2]
    assert np.linalg.norm(distorted - ideal) > 5  # the test only means something if it moves

    out = full_frame(cal).process(dot_at(distorted))
    assert np.linalg.norm(bright_centroid(out) - ideal) < 0.25


@pytest.mark.parametrize(
    ("frame", "config", "shape"),
    [
        ((480, 640), PreprocessConfig(), (96, 96, 3)),
        ((480, 640), PreprocessConfig((84, 112), crop=(10, 20, 300, 200)), (84, 112, 3)),
        ((96, 96), PreprocessConfig(), (96, 96, 3)),
        ((32, 32), PreprocessConfig(), (96, 96, 3)),  # upscaling too
        ((720, 1280), PreprocessConfig((96, 128)), (96, 128, 3)),
    ],
)
def test_output_shape_is_the_policy_input(frame, config, shape):
    out = Preprocessor(config).process(np.zeros((*frame, 3), np.uint8))
    assert out.shape == shape and out.dtype == np.uint8 and out.flags.c_contiguous


def test_centre_box_keeps_the_output_aspect_ratio():
    assert center_box(640, 480, 1.0) == (80, 0, 480, 480)
    assert center_box(480, 640, 1.0) == (0, 80, 480, 480)
    assert center_box(1280, 720, 4 / 3) == (160, 0, 960, 720)


def test_crop_takes_the_box_in_input_pixels_and_bgr_becomes_rgb():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    prep = Preprocessor(PreprocessConfig((200, 300), crop=(10, 20, 300, 200)))
    assert np.array_equal(prep.process(image), image[20:220, 10:310])
    assert np.array_equal(prep.process(image, bgr=True), image[20:220, 10:310, ::-1])


def test_calibration_formats_agree_and_resolve_paths(tmp_path):
    """camera_calibration's YAML (a file next to the config) and CameraInfo fields give one map."""
    calibration_file = {
        "image_width": 640,
        "image_height": 480,
        "camera_name": "front",
        "camera_matrix": {"rows": 3, "cols": 3, "data": np.ravel(K).tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": PLUMB_BOB},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
        "projection_matrix": {"rows": 3, "cols": 4, "data": np.c_[K, np.zeros(3)].ravel().tolist()},
    }
    (tmp_path / "front.yaml").write_text(yaml.safe_dump(calibration_file))
    (tmp_path / "perception.yaml").write_text("output_size: [96, 96]\ncalibration: front.yaml\n")
    from_file = PreprocessConfig.from_yaml(tmp_path / "perception.yaml")
    camera_info = {
        "header": {"frame_id": "front_camera"},
        "width": 640,
        "height": 480,
        "distortion_model": "plumb_bob",
        "d": PLUMB_BOB,
        "k": np.ravel(K).tolist(),
        "r": [0.0] * 9,  # CameraInfo's "not given"
        "p": [0.0] * 12,
        "binning_x": 0,
        "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }
    inline = PreprocessConfig.from_dict({"calibration": camera_info})
    image = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    expected = Preprocessor(inline).process(image)
    assert np.array_equal(Preprocessor(from_file).process(image), expected)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ouput_size": [96, 96]}, "unknown keys ['ouput_size']"),
        ({"output_size": [0, 96]}, "output_size"),
        ({"output_size": [96]}, "output_size"),
        ({"crop": [0, 0, 0, 10]}, "crop"),
        ({"crop": [-1, 0, 10, 10]}, "crop"),
        ({"calibration": 3}, "calibration: must be a path or a mapping"),
        ({"calibration": {"width": 640, "height": 480, "k": [1.0] * 8}}, "camera_matrix needs 9"),
        ({"calibration": {"width": 640, "height": 480, "kk": K}}, "unknown calibration keys"),
        (
            {"calibration": {"width": 640, "height": 480, "k": np.ravel(K).tolist(), "d": [0.1]}},
            "plumb_bob takes 0 or 4 or 5",
        ),
        (
            {"calibration": {"width": 640, "height": 480, "k": np.ravel(K).tolist(),
                             "distortion_model": "kannala"}},
            "unsupported distortion_model 'kannala'",
        ),
        (
            {"calibration": {"width": 640, "height": 480, "k": np.ravel(K).tolist(),
                             "binning_x": 2}},
            "binning",
        ),
        (
            {"crop": [400, 0, 480, 480],
             "calibration": {"width": 640, "height": 480, "k": np.ravel(K).tolist()}},
            "does not fit in the calibrated 640x480",
        ),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_the_reason(values, message):
    with pytest.raises(ValueError) as error:
        PreprocessConfig.from_dict(values)
    assert message in str(error.value)


def test_missing_calibration_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        PreprocessConfig.from_dict({"calibration": "nowhere.yaml"}, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty image"),
        (np.zeros((480, 640, 3), np.float32), "uint8"),
        (np.zeros((480, 640), np.uint8), "(H, W, 3)"),
        (np.zeros((240, 320, 3), np.uint8), "calibration is for 640x480"),
    ],
)
def test_unusable_frames_are_refused_with_the_reason(image, message):
    prep = Preprocessor(PreprocessConfig(calibration=calibration()))
    with pytest.raises(ValueError) as error:
        prep.process(image)
    assert message in str(error.value)


def test_crop_outside_an_uncalibrated_frame_is_refused():
    prep = Preprocessor(PreprocessConfig(crop=(0, 0, 200, 200)))
    with pytest.raises(ValueError, match="does not fit in a 100x100 image"):
        prep.process(np.zeros((100, 100, 3), np.uint8))


def test_every_frame_is_timed():
    prep = Preprocessor(PreprocessConfig(calibration=calibration(PLUMB_BOB)))
    for _ in range(20):
        prep.process(np.zeros((480, 640, 3), np.uint8))
    assert prep.latency.count == 20
    assert 0 < prep.latency.percentile(50) <= prep.latency.percentile(99) < 1000
