"""OpenCV sources: a video written here with PyAV reads back frame for frame, with its own
presentation times and a capture stamp per frame, and bad sources fail with the reason."""

from fractions import Fraction
from itertools import count

import av
import numpy as np
import pytest

from robot_policy.perception import OpenCVSource, PreprocessConfig, Preprocessor

# Variable frame spacing: the source must report the file's timestamps, not index / fps.
PTS_MS = [0, 100, 250, 300, 420, 600, 650, 800]
RGB = np.array([200, 40, 10], np.uint8)  # red-dominant, so a colour-order mix-up shows


def write_video(path, pts_ms=PTS_MS, size=(48, 64)) -> None:
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"bf": "0"})
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        for k, pts in enumerate(pts_ms):
            image = np.empty((*size, 3), np.uint8)
            image[:] = RGB
            image[:, : size[1] // 2, 1] = min(255, 20 * k)  # a per-frame mark to check order
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_a_video_file_reads_back_with_count_order_and_timestamps(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path)
    ticks = count(1000)
    with OpenCVSource(path, clock=lambda: float(next(ticks))) as source:
        assert source.kind == "file" and not source.live
        frames = list(source)
        assert source.read() is None  # the end stays the end
    assert len(frames) == len(PTS_MS)
    assert [f.index for f in frames] == list(range(len(PTS_MS)))
    assert [f.position for f in frames] == pytest.approx([p / 1e3 for p in PTS_MS], abs=1e-6)
    # One clock reading per grab, in order: the stamp is when the frame was handed over.
    assert [f.stamp for f in frames] == [1000.0 + k for k in range(len(PTS_MS))]
    marks = [int(f.image[:, :32, 1].mean()) for f in frames]  # BGR: green is channel 1 too
    assert marks == pytest.approx([20 * k for k in range(len(PTS_MS))], abs=4)
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)


def test_file_frames_become_rgb_policy_input(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, size=(120, 160))
    prep = Preprocessor(PreprocessConfig(output_size=(96, 96), crop=(80, 0, 80, 120)))
    with OpenCVSource(str(path)) as source:
        out = prep.process(source.read().image, bgr=True)
    assert out.shape == (96, 96, 3)
    assert np.abs(out.reshape(-1, 3).mean(axis=0) - RGB).max() < 6  # red first: RGB order
    assert prep.latency.count == 1


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("", ValueError, "empty camera source"),
        ("no/such/clip.mp4", FileNotFoundError, "neither a device index"),
        ("99", OSError, "could not open camera source '99' (device)"),
    ],
)
def test_bad_sources_fail_with_the_reason(spec, error, message):
    with pytest.raises(error) as raised:
        OpenCVSource(spec)
    assert message in str(raised.value)


def test_a_file_that_is_not_a_video_fails_to_open(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(OSError, match="could not open"):
        OpenCVSource(path)
