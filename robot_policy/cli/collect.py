"""`robot-policy collect`: record episodes into a LeRobot v3 dataset (scripted, teleop, ROS)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robot_policy.cli.common import SIM_CONFIG_HELP, camera_list, command, emit, sim_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    from robot_policy.sim import TASKS
    from robot_policy.teleop.registry import DEVICES

    p = command(sub, "collect", run, "record teleoperated episodes into a LeRobot v3 dataset")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--episodes", type=int, required=True, help="episodes to attempt")
    p.add_argument("--out", required=True, type=Path, help="dataset folder (created or appended)")
    p.add_argument(
        "--teleop",
        default="scripted",
        choices=DEVICES,
        help="scripted: the task's expert, unattended; keyboard, gamepad, spacemouse: a person "
        "drives the sim in real time (device -> IK -> safety filter) and starts, saves and "
        "discards episodes from the device (controls are printed at the start)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="human devices: time limit of an episode, counted from its reset (default 60)",
    )
    p.add_argument("--seed", type=int, default=0, help="episode k uses seed SEED+k")
    p.add_argument(
        "--cameras",
        type=camera_list,
        default=(),
        metavar="front,wrist",
        help="cameras to record as video (default: none, state only)",
    )
    p.add_argument("--keep-failed", action="store_true", help="also save episodes that failed")
    p.add_argument(
        "--action-noise",
        type=float,
        default=0.0,
        metavar="RAD",
        help="scripted: std of noise on executed joint targets; the clean action is recorded",
    )
    p.add_argument("--video-codec", default="libsvtav1", help="PyAV encoder for camera videos")
    p.add_argument("--sim-config", type=Path, default=None, help=SIM_CONFIG_HELP)
    p.add_argument(
        "--ros",
        action="store_true",
        help="record through the ROS 2 graph (config/teleop_record_graph.yaml: sim, control, "
        "teleop and recorder nodes) on an isolated DDS domain; scripted: the expert drives as a "
        "teleop device (twist -> IK -> safety filter)",
    )


def run(args: argparse.Namespace) -> int:
    from robot_policy.collect import collect_scripted, collect_teleop

    common = dict(
        seed=args.seed,
        cameras=args.cameras,
        keep_failed=args.keep_failed,
        video_codec=args.video_codec,
        sim_config=sim_config(args.sim_config),
    )
    if args.ros:
        from robot_policy.graph.recording import collect_ros
        from robot_policy.graph.referee import GraphFailure

        if args.action_noise:
            raise ValueError("--action-noise applies to the ROS-free scripted collector only")
        try:
            result = collect_ros(
                args.task,
                args.episodes,
                args.out,
                args.teleop,
                **{**common, "sim_config": args.sim_config},
                max_seconds=None if args.teleop == "scripted" else args.max_seconds,
                progress=not args.json,
            ).as_dict()
        except GraphFailure as err:
            print(f"robot-policy collect: error: {err}", file=sys.stderr)
            return 2
    elif args.teleop == "scripted":
        result = collect_scripted(
            args.task,
            args.episodes,
            args.out,
            action_noise=args.action_noise,
            progress=not args.json,
            **common,
        ).as_dict()
    else:
        from functools import partial

        from robot_policy.teleop.device import DeviceUnavailable
        from robot_policy.teleop.registry import open_device

        if args.action_noise:
            raise ValueError("--action-noise applies to --teleop scripted only")
        try:
            result = collect_teleop(
                args.task,
                args.episodes,
                args.out,
                partial(open_device, args.teleop),
                max_seconds=args.max_seconds,
                **common,
            ).as_dict()
        except DeviceUnavailable as err:
            print(f"robot-policy collect: error: {err}", file=sys.stderr)
            return 2
    device = "expert" if args.teleop == "scripted" else args.teleop
    emit(
        result,
        args.json,
        lambda r: (
            f"saved {r['episodes']}/{r['attempted']} episodes ({r['frames']} frames) of "
            f"'{r['task']}' to {r['dataset']}; {device} success rate {r['success_rate']:.2f} "
            f"in {r['seconds']:.1f} s"
        ),
    )
    return 0
