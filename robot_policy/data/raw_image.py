"""Decoding raw sensor_msgs/Image buffers, ROS-free: live messages and MCAP recordings alike.

Anything with the Image fields (encoding, height, width, step, data) works, which is what both
rclpy messages and mcap-ros2 decoded messages are. Only 8-bit encodings a policy consumes are
accepted; anything else is a clear error rather than a silently mis-shaped array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# encoding -> (channels in the buffer, channel order that yields RGB)
IMAGE_LAYOUTS = {
    "rgb8": (3, [0, 1, 2]),
    "bgr8": (3, [2, 1, 0]),
    "mono8": (1, [0, 0, 0]),
    "rgba8": (4, [0, 1, 2]),
    "bgra8": (4, [2, 1, 0]),
}


def decode_image(msg: Any) -> np.ndarray:
    """An Image-like message as a contiguous uint8 (H, W, 3) RGB array (row padding dropped);
    ValueError for an unsupported encoding or a buffer too short for its header."""
    layout = IMAGE_LAYOUTS.get(msg.encoding)
    if layout is None:
        raise ValueError(
            f"unsupported image encoding {msg.encoding!r}; use one of {list(IMAGE_LAYOUTS)}"
        )
    channels, order = layout
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise ValueError(f"empty image ({height}x{width})")
    row = width * channels
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if step < row or data.size < step * height:
        raise ValueError(
            f"image data too short: {data.size} bytes for {height}x{width} {msg.encoding} "
            f"with step {step}"
        )
    pixels = data[: step * height].reshape(height, step)[:, :row].reshape(height, width, channels)
    return np.ascontiguousarray(pixels[:, :, order])
