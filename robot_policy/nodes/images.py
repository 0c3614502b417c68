"""sensor_msgs/Image <-> numpy without cv_bridge (which needs a compiled ROS install).

Decoding is the ROS-free `robot_policy.data.raw_image`, shared with the MCAP importer.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from robot_policy.data.raw_image import decode_image


def image_to_msg(image: np.ndarray, stamp: Time, frame_id: str = "") -> Image:
    """An (H, W, 3) uint8 RGB array as an rgb8 Image."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {array.dtype} {array.shape}")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = array.tobytes()
    return msg


def msg_to_image(msg: Image) -> np.ndarray:
    """An Image as an (H, W, 3) uint8 RGB array; see `decode_image` for what is accepted."""
    return decode_image(msg)
