"""The `robot-policy` command: one entry point for collecting, inspecting and benchmarking.

Heavy imports (pyarrow, torch, diffusers) happen inside each subcommand so `--help` stays fast.
With `--json`, the last line of stdout is one JSON object; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from robot_policy import __version__
from robot_policy.graph.runner import DEFAULT_GRAPH

SIM_CONFIG_HELP = (
    "sim randomization and episode lengths (YAML like config/sim.yaml; default: its values)"
)


def _emit(result: dict, as_json: bool, human: Callable[[dict], str]) -> None:
    print(json.dumps(result) if as_json else human(result))


def _camera_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _cmd_collect(args: argparse.Namespace) -> int:
    from robot_policy.collect import collect_scripted, collect_teleop

    common = dict(
        seed=args.seed,
        cameras=args.cameras,
        keep_failed=args.keep_failed,
        video_codec=args.video_codec,
        sim_config=_sim_config(args.sim_config),
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
    _emit(
        result,
        args.json,
        lambda r: (
            f"saved {r['episodes']}/{r['attempted']} episodes ({r['frames']} frames) of "
            f"'{r['task']}' to {r['dataset']}; {device} success rate {r['success_rate']:.2f} "
            f"in {r['seconds']:.1f} s"
        ),
    )
    return 0


def _sim_config(path: Path | None):
    from robot_policy.sim import SimConfig

    return SimConfig.from_yaml(path) if path else SimConfig()


def _parse_overrides(items: list[str]) -> dict:
    """`--set key=value` pairs; values are JSON where they parse (numbers, lists, booleans)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def _cmd_train(args: argparse.Namespace) -> int:
    from robot_policy.policies.training import TrainSettings, train

    settings = TrainSettings(
        dataset=str(args.dataset),
        policy=args.policy,
        out=str(args.out),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        num_workers=args.num_workers,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        cameras=args.cameras,
        policy_overrides=_parse_overrides(args.set),
    )
    result = train(settings, progress=not args.json)
    if result is not None:
        _emit(
            result,
            args.json,
            lambda r: (
                f"trained {r['policy']} for {r['steps']} steps in {r['seconds']:.0f} s: "
                f"loss {r['first_loss']:.4f} -> {r['final_loss']:.4f}; checkpoint {r['checkpoint']}"
            ),
        )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.ros:
        return _eval_ros(args)
    import torch

    from robot_policy.eval.evaluate import evaluate
    from robot_policy.policies import load_policy
    from robot_policy.policies.device import select_device

    torch.set_num_threads(args.threads)
    policy = load_policy(args.checkpoint, device=select_device(args.device))
    if args.precision != "eager":
        from robot_policy.policies.accelerate import accelerate

        accelerate(policy, args.precision)
    if args.inference_steps is not None:
        policy.set_inference_steps(args.inference_steps)
    if args.warm_start is not None:
        policy.set_warm_start(args.warm_start)
    result = evaluate(
        policy,
        args.task,
        args.episodes,
        seed=args.seed,
        strategy=args.strategy,
        latency_ms=args.latency_ms,
        safety=not args.no_safety,
        sim_config=_sim_config(args.sim_config),
        video_path=args.save_video,
        plot_path=args.save_plot,
        progress=not args.json,
    )
    _emit(
        result.as_dict(),
        args.json,
        lambda r: (
            f"{r['task']}: success {r['success_rate']:.2f} "
            f"[95% CI {r['ci95_low']:.2f}, {r['ci95_high']:.2f}] over {r['episodes']} episodes; "
            f"mean length {r['mean_episode_length']:.1f} steps, chunk {r['mean_chunk_ms']:.1f} ms, "
            f"{r['denoiser_calls_per_step']:.2f} denoiser calls per action"
        ),
    )
    return 0


def _ros_report(r: dict) -> str:
    c, p = r["control"], r["policy"]
    return (
        f"  success rate   {r['success_rate']:.2f} ({r['successes']}/{r['episodes']} episodes, "
        f"95% CI {r['ci95_low']:.2f}-{r['ci95_high']:.2f})"
        + (
            f", {r['mean_seconds_to_success']:.1f} s to success on average\n"
            if r["mean_seconds_to_success"] is not None
            else "\n"
        )
        + f"  control loop   {c.get('rate_hz', float('nan')):.1f} Hz, "
        f"{c.get('deadline_misses')} deadline misses, jitter p99 "
        f"{c.get('jitter_ms_p99', float('nan')):.2f} ms\n"
        f"  policy         inference p50 {p.get('latency_ms_p50', float('nan')):.1f} ms, "
        f"p99 {p.get('latency_ms_p99', float('nan')):.1f} ms, {p.get('published')} chunks\n"
        f"  safety filter  changed {c.get('safety_interventions')} of {c.get('ticks')} commands "
        f"({', '.join(f'{k} {v}' for k, v in (c.get('reasons') or {}).items()) or 'none'})"
    )


def _eval_ros(args: argparse.Namespace) -> int:
    from robot_policy.graph.referee import evaluate_ros

    result = evaluate_ros(
        args.task,
        args.episodes,
        seed=args.seed,
        checkpoint=args.checkpoint,
        strategy=args.strategy,
        inference_steps=args.inference_steps or 0,
        graph_path=args.graph,
        sim_config=args.sim_config,
        progress=not args.json,
    )
    _emit(
        result.as_dict(),
        args.json,
        lambda r: f"{r['task']} through the ROS 2 graph ({r['strategy']}):\n" + _ros_report(r),
    )
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    """Run a graph until Ctrl-C or until a node exits (then stop the rest)."""
    import time

    from robot_policy.graph.runner import Graph

    overrides: dict[str, dict] = {}
    for node_param, value in _parse_overrides(args.set).items():
        node, _, param = node_param.partition(".")
        if not param:
            raise ValueError(f"--set takes NODE.PARAM=VALUE, got {node_param!r}")
        overrides.setdefault(node, {})[param] = value
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    graph = Graph(args.config, overrides, only=only)
    print(f"robot-policy up: starting {', '.join(graph.nodes)} (Ctrl-C stops)", file=sys.stderr)
    graph.start()
    try:
        while (ended := graph.exited()) is None:
            time.sleep(0.2)
        print(f"robot-policy up: {ended[0]} exited with code {ended[1]}", file=sys.stderr)
        return ended[1] or 1
    except KeyboardInterrupt:
        return 0
    finally:
        codes = graph.stop()
        print(f"robot-policy up: stopped ({codes})", file=sys.stderr)


def _format_info(info: dict) -> str:
    lines = [f"{key}: {value}" for key, value in info.items() if not isinstance(value, dict)]
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {name}: {spec}" for name, spec in value.items()]
    return "\n".join(lines)


def _cmd_dataset_info(args: argparse.Namespace) -> int:
    from robot_policy.data import describe

    _emit(describe(args.dir), args.json, _format_info)
    return 0


def _cmd_dataset_viz(args: argparse.Namespace) -> int:
    from robot_policy.data.viz import plot_episode

    out = args.out or Path(f"{args.dir.name}-viz")
    result = plot_episode(args.dir, args.episode, out, frames=args.frames)
    _emit(result, args.json, lambda r: "\n".join(["wrote:", *r["plots"]]))
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

    _emit(merge(args.dirs, args.out), args.json, _edit_summary)
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
    _emit(split(args.dir, args.out, parts), args.json, _edit_summary)
    return 0


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"expected NAME=VALUE, got {item!r}")
    return name.strip(), value.strip()


def _cmd_dataset_delete(args: argparse.Namespace) -> int:
    from robot_policy.data.edit import delete_episodes, parse_episodes

    result = delete_episodes(args.dir, parse_episodes(args.episodes), args.out)
    _emit(result, args.json, _edit_summary)
    return 0


def _cmd_dataset_recompute_stats(args: argparse.Namespace) -> int:
    from robot_policy.data import DatasetLockedError
    from robot_policy.data.edit import recompute_stats

    try:
        result = recompute_stats(args.dir)
    except DatasetLockedError as err:
        raise ValueError(str(err)) from err
    _emit(result, args.json, _edit_summary)
    return 0


def _cmd_dataset_import_mcap(args: argparse.Namespace) -> int:
    from robot_policy.data.mcap_config import ImportConfig
    from robot_policy.data.mcap_import import import_mcap

    config = ImportConfig.from_yaml(args.config)
    result = import_mcap(
        args.recordings, args.out, config, video_codec=args.video_codec, progress=not args.json
    )
    _emit(
        result,
        args.json,
        lambda r: "\n".join([_edit_summary(r), *(f"note: {n}" for n in r["notes"])]),
    )
    return 0


def _add_dataset_commands(sub: argparse._SubParsersAction) -> None:
    """`robot-policy dataset ACTION ...`: inspection and crash-safe edits of dataset folders."""
    parser = sub.add_parser("dataset", help="inspect, plot, edit and import datasets")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[[argparse.Namespace], int], help: str):
        p = actions.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
        p.set_defaults(handler=handler)
        return p

    new_out = "new dataset folder (must not exist; appears only when complete)"
    p = action("info", _cmd_dataset_info, "summarise a dataset (metadata only)")
    p.add_argument("dir", type=Path)
    p = action("viz", _cmd_dataset_viz, "PNG plots of an episode: joints vs actions, cameras")
    p.add_argument("dir", type=Path)
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default DIR-viz)")
    p.add_argument("--frames", type=int, default=8, help="camera frames shown per camera")
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


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "sim":
        from robot_policy.bench import sim as benchmark

        result = benchmark.run(seconds_per_case=args.seconds or 2.0)
    elif args.suite == "safety":
        from robot_policy.bench import safety as benchmark

        result = benchmark.run()
    elif args.suite == "loop":
        from robot_policy.bench import loop as loop_bench
        from robot_policy.safety import SafetyConfig

        result = loop_bench.run(
            seconds=args.seconds or 60.0,
            worker=args.worker,
            threads=args.threads,
            checkpoint=args.checkpoint,
            task=args.task,
            safety=SafetyConfig.from_yaml(args.safety) if args.safety else None,
            thread_priority=args.thread_priority,
            progress=not args.json,
        )
    elif args.suite == "latency":
        return _bench_latency(args)
    elif args.suite == "ros":
        from robot_policy.bench import ros

        result = ros.run(seconds=args.seconds or 30.0, task=args.task)
    elif args.suite == "record":
        from robot_policy.bench import record

        result = record.run(seconds=args.seconds or 20.0, task=args.task)
    else:
        from robot_policy.bench import inference as benchmark
        from robot_policy.policies import load_policy
        from robot_policy.pretrained import pretrained_path

        policy = load_policy(args.checkpoint or pretrained_path())
        if args.inference_steps is not None:
            policy.set_inference_steps(args.inference_steps)
        result = benchmark.run(
            policy, threads=args.threads, precision=args.precision, load=args.load
        )
        if args.smoothness_episodes > 0:
            from robot_policy.bench.smoothness import boundary_smoothness

            result.update(boundary_smoothness(policy, episodes=args.smoothness_episodes))
    _emit(
        result,
        args.json,
        lambda r: "\n".join(
            f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()
        ),
    )
    return 0


def _bench_latency(args: argparse.Namespace) -> int:
    import torch

    from robot_policy.bench.latency import plot_sweep, sweep
    from robot_policy.eval.evaluate import strategies_for
    from robot_policy.policies import load_policy
    from robot_policy.pretrained import pretrained_path

    torch.set_num_threads(args.threads)
    policy = load_policy(args.checkpoint or pretrained_path())
    if args.inference_steps is not None:
        policy.set_inference_steps(args.inference_steps)
    strategies = args.strategies.split(",") if args.strategies else strategies_for(policy)
    rows = sweep(
        policy,
        args.task,
        [float(v) for v in args.latencies.split(",")],
        [s.strip() for s in strategies],
        args.episodes,
        progress=not args.json,
    )
    result = {"task": args.task, "episodes": args.episodes, "rows": rows}
    if args.plot:
        result["plot"] = str(plot_sweep(rows, args.plot, title=f"{args.task}: success vs latency"))
    _emit(
        result,
        args.json,
        lambda r: "\n".join(
            f"{row['strategy']:>9} {row['latency_ms']:6.0f} ms  success {row['success_rate']:.2f} "
            f"[{row['ci95_low']:.2f}, {row['ci95_high']:.2f}]"
            for row in r["rows"]
        ),
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the shipped pretrained policy pushes a cube in PyBullet, closed loop
    through the ROS 2 graph — sim_node, policy_node and control_node (100 Hz loop + safety
    filter) as separate processes over DDS, on an isolated local domain."""
    from robot_policy.graph.referee import evaluate_ros
    from robot_policy.policies import read_checkpoint_config
    from robot_policy.pretrained import pretrained_path

    checkpoint = pretrained_path()
    config, _ = read_checkpoint_config(checkpoint)
    result = evaluate_ros("push", args.episodes, seed=args.seed, progress=not args.json)
    report = {**result.as_dict(), "checkpoint": str(checkpoint), "policy_type": config.type}
    _emit(
        report,
        args.json,
        lambda r: (
            f"robot-policy demo: shipped {r['policy_type']} policy, task 'push', PyBullet, "
            "closed loop through ROS 2 (sim_node -> policy_node -> control_node)\n"
            + _ros_report(r)
            + f"\n  checkpoint     {r['checkpoint']}"
        ),
    )
    return 0


def _add_inference_steps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inference-steps",
        type=int,
        default=None,
        help="override the checkpoint's denoising/integration steps",
    )


def _add_precision(parser: argparse.ArgumentParser, default: str, purpose: str) -> None:
    # The names of robot_policy.policies.inference_unet1d.PRECISIONS, spelled out so that
    # `--help` does not import torch.
    eager = default == "eager"
    plain = ", or eager, the plain network" if eager else ""
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "int8"] + (["eager"] if eager else []),
        default=default,
        help=f"{purpose}: the CPU fast path in fp32, bf16, or int8 weights with bf16 "
        f"activations (BENCHMARKS.md){plain} (default {default})",
    )


def build_parser() -> argparse.ArgumentParser:
    from robot_policy.sim import TASKS
    from robot_policy.teleop.registry import DEVICES

    parser = argparse.ArgumentParser(
        prog="robot-policy",
        description="Robot learning workbench on ROS 2: demonstrations to action-chunk policies.",
    )
    parser.add_argument("--version", action="version", version=f"robot-policy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
        p.set_defaults(handler=handler)
        return p

    p = add("collect", _cmd_collect, "record teleoperated episodes into a LeRobot v3 dataset")
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
        type=_camera_list,
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

    p = add("train", _cmd_train, "train a diffusion or flow policy; writes a checkpoint folder")
    p.add_argument("--dataset", required=True, type=Path)
    p.add_argument("--policy", required=True, choices=["diffusion", "flow"])
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="continue from OUT/training_state.pt")
    p.add_argument(
        "--cameras",
        type=_camera_list,
        default=(),
        metavar="front",
        help="train an image policy on these cameras (+ robot state)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="policy config override, e.g. --set horizon=16 --set down_dims=[64,128,256]",
    )

    p = add("eval", _cmd_eval, "closed-loop evaluation of a checkpoint in sim")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument(
        "--seed",
        type=int,
        default=100000,
        help="episode k uses seed SEED+k (default keeps clear of collection seeds)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    _add_inference_steps(p)
    _add_precision(p, "eager", "denoiser, in-process eval (flow rtc needs eager)")
    p.add_argument(
        "--strategy",
        default="receding",
        choices=["receding", "ensemble", "rtc", "streaming"],
        help="chunk execution: receding horizon (DP), temporal ensembling (ACT), real-time "
        "chunking (inpaint the committed actions), streaming diffusion (needs a checkpoint "
        "trained with streaming=true)",
    )
    p.add_argument(
        "--warm-start",
        type=float,
        default=None,
        metavar="LEVEL",
        help="start each chunk from the previous plan re-noised to LEVEL in (0, 1) and run "
        "that fraction of the steps (0: off; default: the checkpoint's warm_start_level)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="inject this inference delay (simulated time) between observation and chunk",
    )
    p.add_argument(
        "--no-safety",
        action="store_true",
        help="bypass the safety filter (on by default; for measuring what it changes)",
    )
    p.add_argument("--sim-config", type=Path, default=None, help=SIM_CONFIG_HELP)
    p.add_argument(
        "--ros",
        action="store_true",
        help="run the episodes through the ROS 2 graph (sim_node + policy_node + control_node "
        "over DDS, real time) instead of in-process",
    )
    p.add_argument(
        "--graph",
        type=Path,
        default=DEFAULT_GRAPH,
        help="--ros: graph parameter file (default config/sim_graph.yaml)",
    )
    p.add_argument(
        "--save-video",
        type=Path,
        default=None,
        metavar="PATH.mp4",
        help="record the first episode's front camera",
    )
    p.add_argument(
        "--save-plot",
        type=Path,
        default=None,
        metavar="PATH.png",
        help="plot the first episode's predicted chunks against executed actions",
    )

    _add_dataset_commands(sub)

    p = add("bench", _cmd_bench, "benchmarks (results belong in BENCHMARKS.md)")
    p.add_argument(
        "suite", choices=["sim", "inference", "safety", "latency", "ros", "loop", "record"]
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="sim: measuring time per case (default 2); ros: total run time (default 30); "
        "loop: run time (default 60); record: length of the recorded episode (default 20)",
    )
    p.add_argument("--threads", type=int, default=1, help="inference, loop: torch intra-op threads")
    _add_precision(p, "int8", "inference: what to time against eager")
    p.add_argument(
        "--load",
        action="store_true",
        help="inference: also time the chunk while another process keeps one core busy",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="inference, loop: checkpoint to run (default: the shipped one)",
    )
    p.add_argument(
        "--worker",
        choices=["thread", "process"],
        default="process",
        help="loop: infer in a child process at lower priority (default) or in a thread",
    )
    p.add_argument(
        "--thread-priority",
        type=int,
        default=50,
        help="loop: SCHED_FIFO priority of the control loop's thread, as ros2_control's "
        "(0: normal scheduling; needs CAP_SYS_NICE or an rtprio limit, else reported)",
    )
    p.add_argument(
        "--safety",
        type=Path,
        default=None,
        metavar="YAML",
        help="loop: safety filter config (default: config/safety/panda.yaml's values)",
    )
    _add_inference_steps(p)
    p.add_argument("--task", default="push", help="latency, loop, record: task to run")
    p.add_argument("--episodes", type=int, default=50, help="latency: episodes per point")
    p.add_argument("--latencies", default="0,100,200,300", help="latency: ms, comma-separated")
    p.add_argument(
        "--strategies",
        default=None,
        help="latency: comma-separated strategies (default: all the checkpoint can run)",
    )
    p.add_argument(
        "--smoothness-episodes",
        type=int,
        default=3,
        help="inference: episodes per strategy for chunk-boundary jerk (0: skip)",
    )
    p.add_argument("--plot", type=Path, default=None, help="latency: write a PNG plot here")

    p = add("up", _cmd_up, "run a ROS 2 graph from its YAML, without `ros2 launch`")
    p.add_argument("config", type=Path, help="graph parameter file, e.g. config/sim_graph.yaml")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (repeatable), e.g. --set sim_node.task=lift",
    )
    p.add_argument("--only", default=None, help="comma-separated subset of the graph's nodes")

    p = add("demo", _cmd_demo, "the main job on the embedded default")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=100000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"robot-policy {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robot-policy {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
