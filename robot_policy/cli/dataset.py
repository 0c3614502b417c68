"""`robot-policy dataset ACTION`: inspection and crash-safe edits of dataset folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_policy.cli.common import Handler, command, emit


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`robot-policy dataset ACTION ...`: inspection and crash-safe edits of dataset folders."""
    parser = sub.add_parser("dataset", help="inspect, plot, edit and import datasets")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        return command(actions, name, handler, help)

    new_out = "new dataset folder (must not exist; appears only when complete)"
    p = action("info", _cmd_dataset_info, "summarise a dataset (metadata only)")
    p.add_argument("dir", type=Path)
    p = action(
        "viz", _cmd_dataset_viz, "an episode as PNG plots, or in Rerun (robot model, cameras)"
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--episode", type=int, default=0)
    p.add_argument(
        "--viewer",
        choices=("png", "rerun"),
        default="png",
        help="png: plots into --out; rerun: the episode in Rerun (robot_policy[viz]), saved "
        "to --save or shown in a viewer spawned here",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default DIR-viz)")
    p.add_argument("--frames", type=int, default=8, help="png: camera frames shown per camera")
    p.add_argument(
        "--save", type=Path, default=None, metavar="OUT.rrd", help="rerun: write a recording"
    )
    p = action("merge", _cmd_dataset_merge, "concatenate datasets with the same features")
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR")
    p.add_argument("--out", type=Path, required=True, help=new_out)
    p = action("split", _cmd_dataset_split, "split a dataset into parts at OUT/<name>")
    p.add_argument("dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="new folder for the parts")
    p.add_argument(
        "--fractions", default=None, metavar="train=0.8,val=0.2", help="consecutive episodes"
    )
    p.add_argument(
        "--part", action="append", default=[], metavar="NAME=0-79,85", help="explicit episodes"
    )
    p = action("delete-episodes", _cmd_dataset_delete, "copy a dataset without some episodes")
    p.add_argument("dir", type=Path)
    p.add_argument("--episodes", required=True, metavar="1,3,5-7", help="episodes to drop")
    p.add_argument("--out", type=Path, required=True, help=new_out)
    p = action(
        "recompute-stats",
        _cmd_dataset_recompute_stats,
        "recompute episode and dataset stats from the stored frames (in place, atomic)",
    )
    p.add_argument("dir", type=Path)
    p = action(
        "import-mcap",
        _cmd_dataset_import_mcap,
        "import rosbag2 MCAP recordings (files or bag folders) by a topic-to-feature mapping",
    )
    p.add_argument("recordings", type=Path, nargs="+", metavar="RECORDING")
    p.add_argument("--out", type=Path, required=True, help=new_out)
    p.add_argument("--config", type=Path, required=True, help="e.g. config/mcap_import.yaml")
    p.add_argument("--video-codec", default="libsvtav1", help="PyAV encoder for camera videos")


def _format_info(info: dict) -> str:
    lines = [f"{key}: {value}" for key, value in info.items() if not isinstance(value, dict)]
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {name}: {spec}" for name, spec in value.items()]
    return "\n".join(lines)


def _cmd_dataset_info(args: argparse.Namespace) -> int:
    from robot_policy.data import describe

    emit(describe(args.dir), args.json, _format_info)
    return 0


def _cmd_dataset_viz(args: argparse.Namespace) -> int:
    from robot_policy.data.viz import plot_episode

    if args.viewer == "rerun":
        from robot_policy.data.rerun_viz import log_episode

        result = log_episode(args.dir, args.episode, save=args.save, spawn=args.save is None)
        where = f"wrote {result['rrd']} (open it with: rerun {result['rrd']})"
        emit(result, args.json, lambda r: where if r["rrd"] else "sent to the Rerun viewer")
        return 0
    if args.save is not None:
        raise ValueError("--save is for --viewer rerun; PNGs go to --out")
    out = args.out or Path(f"{args.dir.name}-viz")
    result = plot_episode(args.dir, args.episode, out, frames=args.frames)
    emit(result, args.json, lambda r: "\n".join(["wrote:", *r["plots"]]))
    return 0


def _edit_summary(result: dict) -> str:
    if "parts" in result:
        return "\n".join(
            f"{result['out']}/{name}: {part['episodes']} episodes, {part['frames']} frames"
            for name, part in result["parts"].items()
        )
    where = result.get("out") or result.get("dataset")
    return f"{where}: {result['episodes']} episodes, {result['frames']} frames"


def _cmd_dataset_merge(args: argparse.Namespace) -> int:
    from robot_policy.data.edit import merge

    emit(merge(args.dirs, args.out), args.json, _edit_summary)
    return 0


def _cmd_dataset_split(args: argparse.Namespace) -> int:
    from robot_policy.data import LeRobotDataset
    from robot_policy.data.edit import parse_episodes, split, split_fractions

    if bool(args.fractions) == bool(args.part):
        raise ValueError("give either --fractions or --part (one or more), not both")
    if args.fractions:
        pairs = dict(_name_value(item) for item in args.fractions.split(","))
        fractions = {name: float(value) for name, value in pairs.items()}
        parts = split_fractions(fractions, LeRobotDataset(args.dir).num_episodes)
    else:
        parts = {name: parse_episodes(spec) for name, spec in map(_name_value, args.part)}
    emit(split(args.dir, args.out, parts), args.json, _edit_summary)
    return 0


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"expected NAME=VALUE, got {item!r}")
    return name.strip(), value.strip()


def _cmd_dataset_delete(args: argparse.Namespace) -> int:
    from robot_policy.data.edit import delete_episodes, parse_episodes

    result = delete_episodes(args.dir, parse_episodes(args.episodes), args.out)
    emit(result, args.json, _edit_summary)
    return 0


def _cmd_dataset_recompute_stats(args: argparse.Namespace) -> int:
    from robot_policy.data import DatasetLockedError
    from robot_policy.data.edit import recompute_stats

    try:
        result = recompute_stats(args.dir)
    except DatasetLockedError as err:
        raise ValueError(str(err)) from err
    emit(result, args.json, _edit_summary)
    return 0


def _cmd_dataset_import_mcap(args: argparse.Namespace) -> int:
    from robot_policy.data.mcap_config import ImportConfig
    from robot_policy.data.mcap_import import import_mcap

    config = ImportConfig.from_yaml(args.config)
    result = import_mcap(
        args.recordings, args.out, config, video_codec=args.video_codec, progress=not args.json
    )
    emit(
        result,
        args.json,
        lambda r: "\n".join([_edit_summary(r), *(f"note: {n}" for n in r["notes"])]),
    )
    return 0
