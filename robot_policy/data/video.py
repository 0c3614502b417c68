"""Camera streams as mp4: streaming encode, packet-level append, and timestamp-seeking decode.

Each episode is encoded into its own short mp4 while it is recorded (frames never pile up in
RAM). Saving appends that file's packets to the camera's current chunk file with a timestamp
offset - a remux, no re-encode - so an episode is found by its [from, to) timestamps, as in
LeRobot v3.0. A GOP of 2 frames (LeRobot's default) keeps random access cheap: a seek lands on a
keyframe at most one frame before the target.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np

from robot_policy.threads import REALTIME, scheduling, thread_ids

DEFAULT_VIDEO_CODEC = "libsvtav1"
PIX_FMT = "yuv420p"
GOP_SIZE = 2

# SVT-AV1 prints a banner to stderr for every encoder it opens; keep it to errors unless the
# user asked for something else.
os.environ.setdefault("SVT_LOG", "1")

# Quality settings per encoder family: LeRobot's crf 30 for AV1; x264's usual crf 23 without
# B-frames so that packets stay in presentation order and concatenate trivially.
_CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "av1": {"crf": "30", "preset": "10"},
    "h264": {"crf": "23", "preset": "veryfast", "bf": "0"},
    "hevc": {"crf": "28", "preset": "veryfast", "x265-params": "bframes=0:log-level=error"},
    "mpeg4": {"bf": "0"},
}


# Index (moov) at the front, as LeRobot writes it, so players and the Hub can stream the file.
_MP4_OPTIONS = {"movflags": "faststart"}


@contextmanager
def _encoder_kept_off_realtime() -> Iterator[None]:
    """Threads the block starts or raises to a realtime policy go back to the caller's.

    SVT-AV1 puts the thread that opens it, and the ~40 workers it starts, on SCHED_FIFO 99
    whenever the process may (root, CAP_SYS_NICE, an rtprio limit as real-time ROS set-ups
    grant): a recorder would then encode ahead of control_node's 100 Hz loop (FIFO 50) and of
    the physics, on a 2-core machine starving both. The workers start when the codec opens and
    later ones inherit from them, so putting them back once, right after opening, before any
    frame, covers the encoder's life.
    """
    caller = scheduling(0)
    before = {tid: scheduling(tid) for tid in thread_ids()}
    try:
        yield
    finally:
        for tid in thread_ids():
            now = scheduling(tid)
            if caller is None or now is None or now[0] not in REALTIME or before.get(tid) == now:
                continue
            try:
                os.sched_setscheduler(tid, caller[0], os.sched_param(caller[1]))
            except OSError:  # exited meanwhile
                pass


def canonical_codec(encoder: str) -> str:
    """The codec an encoder name writes ("libsvtav1" -> "av1"), as info.json records it."""
    try:
        return av.Codec(encoder, "w").canonical_name
    except Exception as err:  # PyAV raises several codec-lookup error types
        raise ValueError(f"video codec {encoder!r} is not available in this PyAV build") from err


class EpisodeVideoEncoder:
    """Encodes one episode of one camera into a standalone mp4, a frame at a time."""

    def __init__(self, path: Path, fps: int, height: int, width: int, codec: str):
        self.path = path
        self.frames = 0
        self._finished = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), "w", options=_MP4_OPTIONS)
        options = {"g": str(GOP_SIZE), **_CODEC_OPTIONS.get(canonical_codec(codec), {})}
        self._stream = self._container.add_stream(codec, rate=fps, options=options)
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = PIX_FMT
        with _encoder_kept_off_realtime():
            self._stream.codec_context.open()

    def add(self, image: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def finish(self) -> Path:
        """Flush and close the file; calling it again (a retried save) just returns the path."""
        if not self._finished:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._finished = True
        return self.path

    def abort(self) -> None:
        """Drop the episode's file. The encoder is drained first, its packets thrown away:
        SVT-AV1 closed mid-stream prints "deinit called without sending EOS" to stderr, which
        a user reads as a failure, once per discarded episode."""
        try:
            if not self._finished:
                try:
                    for _ in self._stream.encode():
                        pass
                finally:
                    self._container.close()
        finally:
            self._finished = True
            self.path.unlink(missing_ok=True)


def append_video(base: Path | None, episode: Path, out: Path, offset_s: float) -> None:
    """Write `out` = packets of `base` (if any) then those of `episode` shifted by `offset_s`.

    Both inputs come from the same encoder settings, so the episode's codec parameters match
    the base's and a remux is a valid stream. Cost is a copy of `base`, O(file size).
    """
    with av.open(str(out), "w", options=_MP4_OPTIONS) as dst:
        out_stream = None
        for src_path, offset in ((base, 0.0), (episode, offset_s)):
            if src_path is None:
                continue
            with av.open(str(src_path)) as src:
                in_stream = src.streams.video[0]
                if out_stream is None:
                    out_stream = dst.add_stream_from_template(in_stream, opaque=True)
                    out_stream.time_base = in_stream.time_base
                shift = round(offset / in_stream.time_base)
                for packet in src.demux(in_stream):
                    if packet.dts is None:  # demuxer flush packet
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = out_stream
                    dst.mux(packet)


class SegmentMuxer:
    """Builds one mp4 out of whole episodes cut from other mp4s, by packet copy (no re-encode).

    Dataset edits (merge, split, delete) move episodes between chunk files; remuxing keeps the
    pixels bit-identical and costs no encoder time. An episode is found by its first frame's
    timestamp and frame count, and must start on a keyframe (episodes are encoded separately,
    here and by LeRobot, so they do). Packets from different files can only share a stream when
    they come from identical encoder settings; that is checked, and a mismatch is an error
    rather than a file that fails to decode.
    """

    def __init__(self, path: Path):
        self.path = path
        self.bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), "w", options=_MP4_OPTIONS)
        self._stream: Any = None
        self._signature: tuple | None = None
        self._source: Path | None = None

    def add(self, source: Path, start_s: float, frames: int, fps: int, offset_s: float) -> None:
        """Copy `frames` frames of `source` starting at `start_s` so they start at `offset_s`."""
        with av.open(str(source)) as src:
            in_stream = src.streams.video[0]
            self._check_compatible(source, in_stream)
            time_base = in_stream.time_base
            half_frame = 0.5 / fps
            end_s = start_s + (frames - 0.5) / fps
            first_tick = max(0, int((start_s - half_frame) / time_base))
            src.seek(first_tick, stream=in_stream, backward=True)
            packets = []
            for packet in src.demux(in_stream):
                if packet.dts is None or packet.pts is None:  # demuxer flush packet
                    continue
                t = float(packet.pts * time_base)
                if start_s - half_frame <= t < end_s:
                    packets.append(packet)
                    if len(packets) == frames:
                        break
            if len(packets) != frames:
                raise ValueError(
                    f"{source}: {len(packets)} video frames from {start_s:.3f} s, expected {frames}"
                )
            if not packets[0].is_keyframe:
                raise ValueError(
                    f"{source}: the episode at {start_s:.3f} s does not start on a keyframe, so it "
                    "cannot be cut out without re-encoding"
                )
            # Anchor on the first packet's own pts: frame k keeps its exact spacing and lands
            # within half a tick of offset_s + k / fps.
            shift = round(offset_s / time_base) - min(p.pts for p in packets)
            for packet in packets:
                packet.pts += shift
                packet.dts += shift
                packet.stream = self._stream
                self.bytes += packet.size
                self._container.mux(packet)

    def _check_compatible(self, source: Path, in_stream: Any) -> None:
        ctx = in_stream.codec_context
        signature = (
            ctx.name,
            in_stream.width,
            in_stream.height,
            in_stream.format.name if in_stream.format else None,
            bytes(ctx.extradata or b""),
            in_stream.time_base,
        )
        if self._stream is None:
            self._stream = self._container.add_stream_from_template(in_stream, opaque=True)
            self._stream.time_base = in_stream.time_base
            self._signature, self._source = signature, source
        elif signature != self._signature:
            raise ValueError(
                f"{source} and {self._source} were encoded with different codec parameters "
                f"({signature[:4]} vs {self._signature[:4]}, or stream headers differ); their "
                "episodes cannot share a video file without re-encoding"
            )

    def close(self) -> None:
        self._container.close()


def probe_video_info(path: Path) -> dict[str, Any]:
    """The `info` block LeRobot stores for a video feature in info.json, with 0.6's key names
    (`is_depth_map`, no longer `video.is_depth_map`: `lerobot-edit-dataset merge` refuses
    features whose info differs)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        channels = 3 if stream.pix_fmt.startswith(("yuv", "rgb", "bgr", "gbr")) else 1
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.fps": int(stream.base_rate),
            "video.channels": channels,
            "has_audio": bool(container.streams.audio),
            "is_depth_map": False,
        }


class VideoFrameReader:
    """Decodes frames of one mp4 by timestamp, keeping the container open between calls.

    Pickling drops the open container, so a dataset can be sent to DataLoader workers; each
    worker reopens the file on first use.
    """

    def __init__(self, path: Path):
        self.path = path
        self._container: Any = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_container": None, "_pid": None}

    def _stream(self) -> Any:
        # A forked DataLoader worker must not share the parent's file position: reopen.
        if self._container is None or self._pid != os.getpid():
            self._container = av.open(str(self.path))
            self._pid = os.getpid()
        return self._container.streams.video[0]

    def decode_range(self, start_s: float, end_s: float, fps: int) -> dict[int, np.ndarray]:
        """Frames with start_s <= t <= end_s, keyed by frame number round(t * fps).

        Seeks to the keyframe at or before `start_s` and decodes forward: the cost is the
        frames in the range plus at most GOP_SIZE - 1 frames before it.
        """
        stream = self._stream()
        half_frame = 0.5 / fps
        self._container.seek(
            max(0, int((start_s - half_frame) / stream.time_base)), stream=stream, backward=True
        )
        frames: dict[int, np.ndarray] = {}
        for frame in self._container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            if t > end_s + half_frame:
                break
            if t >= start_s - half_frame:
                frames[round(t * fps)] = frame.to_ndarray(format="rgb24")
        return frames

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class FrameCache:
    """A bounded LRU of decoded frames keyed by (camera, global frame index)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._frames: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
        return frame

    def put(self, key: tuple[str, int], frame: np.ndarray) -> None:
        self._frames[key] = frame
        self._frames.move_to_end(key)
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
