"""`robot-policy bench record`: the recorder's cadence and frame drops through the graph."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_policy.graph.recording import POLL, RECORD_GRAPH, RecordReferee, record_overrides
from robot_policy.graph.referee import check_alive, running_graph


def run(
    seconds: float = 20.0,
    fps: int = 30,
    cameras: Sequence[str] = ("front", "wrist"),
    task: str = "push",
    video_codec: str = "libsvtav1",
    out: str | Path | None = None,
    log_path: str | Path | None = None,
) -> dict[str, Any]:
    """`robot-policy bench record`: one `seconds`-long episode at `fps` with `cameras` (96x96,
    published by sim_node at `fps`) while the scripted device drives; the recorder's own figures
    for it: `record_hz` (frames written per second of wall time), `frame_drop_rate` (camera
    frames the hold had to repeat because no new image had come), per-frame latency from frame
    time to written, and the rate each topic actually arrived at."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="robot_policy_bench_record_") as tmp:
        root = Path(out) if out is not None else Path(tmp) / "dataset"
        overrides = record_overrides(
            task, root, "scripted", cameras=cameras, video_codec=video_codec, fps=fps
        )
        with running_graph(overrides, RECORD_GRAPH, log_path, RecordReferee) as (graph, ref, log):
            ref.wait_recorder_ready(graph, log)
            ref.new_episode(first=True, record=True)
            began = time.monotonic()
            while time.monotonic() - began < seconds:
                check_alive(graph, log)
                time.sleep(POLL)
            report = ref.record("stop")
    return {
        "record_hz": report["record_hz"],
        "frame_drop_rate": report["frame_drop_rate"],
        "fps": fps,
        "cameras": list(cameras),
        "frames": report["frames"],
        "seconds": report["seconds"],
        "frame_latency_ms_p50": report["frame_latency_ms_p50"],
        "frame_latency_ms_p99": report["frame_latency_ms_p99"],
        "stale_frames": report["stale_frames"],
        "received_hz": report["received_hz"],
        "video_codec": video_codec,
    }
