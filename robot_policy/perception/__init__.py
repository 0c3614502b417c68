"""Camera sources and image preprocessing, without ROS: what `perception_node` wraps.

with OpenCVSource("0") as camera:                  # a device, a video file or a stream URL
    prep = Preprocessor(PreprocessConfig.from_yaml("config/perception.yaml"))
    for frame in camera:
        policy_image = prep.process(frame.image, bgr=True)   # (96, 96, 3) RGB uint8
"""

from .calibration import CameraCalibration
from .preprocess import PreprocessConfig, Preprocessor, center_box
from .sources import Frame, OpenCVSource

__all__ = [
    "CameraCalibration",
    "Frame",
    "OpenCVSource",
    "PreprocessConfig",
    "Preprocessor",
    "center_box",
]
