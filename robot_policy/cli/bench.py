"""`robot-policy bench SUITE`: one subcommand per benchmark suite (robot_policy/bench/), each
with only its own flags. Results belong in BENCHMARKS.md, with the command and the CPU model."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_policy.cli.common import (
    Handler,
    add_inference_arguments,
    command,
    emit,
    inference_settings,
    precision_for,
)
from robot_policy.runtime.strategies import NAMES

LOAD_HELP = (
    "run beside a CPU hog: one busy process per core at the user's niceness "
    "(robot_policy.bench.hog)"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks (results belong in BENCHMARKS.md)")
    suites = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")

    def suite(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        return command(suites, name, handler, help)

    def checkpoint(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--checkpoint", type=Path, default=None, help="default: the shipped checkpoint"
        )

    p = suite("sim", _sim, "physics, env-step and render rates")
    p.add_argument("--seconds", type=float, default=2.0, help="measuring time per case")
    suite("safety", _safety, "per-tick cost of the safety filter, with and without link keep-out")
    p = suite("inference", _inference, "chunk latency, prepared as policy_node does, vs eager")
    checkpoint(p)
    add_inference_arguments(p)
    p.add_argument(
        "--load",
        action="store_true",
        help="also time the chunk while another process keeps one core busy",
    )
    p.add_argument(
        "--smoothness-episodes",
        type=int,
        default=3,
        help="episodes per strategy for chunk-boundary jerk (0: skip)",
    )
    p = suite("loop", _loop, "the 100 Hz control loop while the policy infers beside it")
    checkpoint(p)
    add_inference_arguments(p)
    p.add_argument("--seconds", type=float, default=60.0, help="run time")
    p.add_argument("--task", default="push")
    p.add_argument(
        "--worker",
        choices=["thread", "process"],
        default="process",
        help="infer in a child process at lower priority (default) or in a thread",
    )
    p.add_argument(
        "--thread-priority",
        type=int,
        default=50,
        help="SCHED_FIFO priority of the loop's thread, as ros2_control's (0: normal "
        "scheduling; needs CAP_SYS_NICE or an rtprio limit, else reported)",
    )
    p.add_argument(
        "--safety",
        type=Path,
        default=None,
        metavar="YAML",
        help="safety filter config (default: the robot's config/safety/ YAML)",
    )
    p = suite("latency", _latency, "success against injected inference latency, per strategy")
    checkpoint(p)
    add_inference_arguments(p)
    p.add_argument("--task", default="push")
    p.add_argument("--episodes", type=int, default=50, help="episodes per point")
    p.add_argument("--latencies", default="0,100,200,300", help="ms, comma-separated")
    p.add_argument(
        "--strategies",
        default=None,
        help=f"comma-separated, of {', '.join(NAMES)} (default: all the checkpoint can run)",
    )
    p.add_argument("--plot", type=Path, default=None, help="write a PNG plot here")
    p = suite("ros", _ros, "state -> command latency through the ROS 2 graph")
    p.add_argument("--seconds", type=float, default=30.0, help="total run time")
    p.add_argument("--task", default="push")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="policy to run (default: the shipped one); an image policy adds camera_to_command",
    )
    p.add_argument("--load", action="store_true", help=LOAD_HELP)
    p = suite("fuzz", _fuzz, "fuzzed and adversarial chunks against control_node over DDS")
    p.add_argument("--chunks", type=int, default=10_000, help="chunks to send")
    p.add_argument("--seed", type=int, default=0, help="seeds the chunks and the sim")
    p.add_argument("--task", default="push", help="the sim's scene (reach: no cube)")
    p.add_argument("--load", action="store_true", help=LOAD_HELP)
    p = suite("record", _record, "the recorder's cadence through the graph")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the recorded episode")
    p.add_argument("--task", default="push")


def _report(args: argparse.Namespace, result: dict) -> int:
    emit(
        result,
        args.json,
        lambda r: "\n".join(
            f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()
        ),
    )
    return 0


def _sim(args: argparse.Namespace) -> int:
    from robot_policy.bench import sim

    return _report(args, sim.run(seconds_per_case=args.seconds))


def _safety(args: argparse.Namespace) -> int:
    from robot_policy.bench import safety

    return _report(args, safety.run())


def _inference(args: argparse.Namespace) -> int:
    from robot_policy.bench import inference
    from robot_policy.policies import load_policy
    from robot_policy.pretrained import pretrained_path

    policy = load_policy(args.checkpoint or pretrained_path())
    result = inference.run(policy, inference_settings(args), load=args.load)
    if args.smoothness_episodes > 0:
        from robot_policy.bench.smoothness import boundary_smoothness

        if args.inference_steps:
            policy.set_inference_steps(args.inference_steps)
        result.update(boundary_smoothness(policy, episodes=args.smoothness_episodes))
    return _report(args, result)


def _loop(args: argparse.Namespace) -> int:
    from robot_policy.bench import loop
    from robot_policy.safety import SafetyConfig

    result = loop.run(
        seconds=args.seconds,
        worker=args.worker,
        inference=inference_settings(args),
        checkpoint=args.checkpoint,
        task=args.task,
        safety=SafetyConfig.from_yaml(args.safety) if args.safety else None,
        thread_priority=args.thread_priority,
        progress=not args.json,
    )
    return _report(args, result)


def _ros(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from robot_policy.bench import ros
    from robot_policy.bench.hog import cpu_hog

    with cpu_hog() if args.load else nullcontext(0) as hogs:
        result = ros.run(seconds=args.seconds, task=args.task, checkpoint=args.checkpoint)
    return _report(args, {**result, "load_processes": hogs})


def _fuzz(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from robot_policy.bench.hog import cpu_hog
    from robot_policy.graph import fuzz

    with cpu_hog() if args.load else nullcontext(0) as hogs:
        result = fuzz.run(args.chunks, args.seed, args.task, progress=not args.json)
    return _report(args, {**result, "load_processes": hogs})


def _record(args: argparse.Namespace) -> int:
    from robot_policy.bench import record

    return _report(args, record.run(seconds=args.seconds, task=args.task))


def _latency(args: argparse.Namespace) -> int:
    import torch

    from robot_policy.bench.latency import plot_sweep, sweep
    from robot_policy.policies.inference import prepare_policy
    from robot_policy.pretrained import pretrained_path
    from robot_policy.runtime.strategies import strategies_for

    checkpoint = args.checkpoint or pretrained_path()
    torch.set_num_threads(args.threads)
    if args.strategies:
        strategies = [s.strip() for s in args.strategies.split(",")]
    else:
        from robot_policy.policies import read_checkpoint_config

        strategies = list(strategies_for(read_checkpoint_config(checkpoint)[0]))
    precision = precision_for(strategies, checkpoint, args.precision)
    policy, _ = prepare_policy(checkpoint, inference_settings(args, precision=precision))
    rows = sweep(
        policy,
        args.task,
        [float(v) for v in args.latencies.split(",")],
        strategies,
        args.episodes,
        progress=not args.json,
    )
    result = {"task": args.task, "episodes": args.episodes, "rows": rows}
    if args.plot:
        result["plot"] = str(plot_sweep(rows, args.plot, title=f"{args.task}: success vs latency"))
    emit(
        result,
        args.json,
        lambda r: "\n".join(
            f"{row['strategy']:>9} {row['latency_ms']:6.0f} ms  success {row['success_rate']:.2f} "
            f"[{row['ci95_low']:.2f}, {row['ci95_high']:.2f}]"
            for row in r["rows"]
        ),
    )
    return 0
