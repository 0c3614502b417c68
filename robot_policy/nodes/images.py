"""sensor_msgs/Image <-> numpy without cv_bridge (which needs a compiled ROS install).

Only the encodings a policy consumes are accepted; anything else is a clear error rather than a
silently mis-shaped array.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


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
    """An Image as an (H, W, 3) uint8 RGB array (bgr8 is reordered, mono8 replicated)."""
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise ValueError(
            f"unsupported image encoding {msg.encoding!r}; use one of {list(_CHANNELS)}"
        )
    row = msg.width * channels
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(
            f"image data too short: {len(msg.data)} bytes for {msg.height}x{msg.width} "
            f"{msg.encoding} with step {msg.step}"
        )
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8, count=msg.step * msg.height)
    array = raw.reshape(msg.height, msg.step)[:, :row].reshape(msg.height, msg.width, channels)
    if msg.encoding == "bgr8":
        array = array[..., ::-1]
    elif msg.encoding == "mono8":
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)
