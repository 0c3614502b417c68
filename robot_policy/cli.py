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

SIM_CONFIG_HELP = (
    "sim randomization and episode lengths (YAML like config/sim.yaml; default: its values)"
)


def _emit(result: dict, as_json: bool, human: Callable[[dict], str]) -> None:
    print(json.dumps(result) if as_json else human(result))


def _camera_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _cmd_collect(args: argparse.Namespace) -> int:
    from robot_policy.teleop.collect import collect_scripted

    result = collect_scripted(
        args.task,
        args.episodes,
        args.out,
        seed=args.seed,
        cameras=args.cameras,
        keep_failed=args.keep_failed,
        video_codec=args.video_codec,
        sim_config=_sim_config(args.sim_config),
        action_noise=args.action_noise,
        progress=not args.json,
    ).as_dict()
    _emit(
        result,
        args.json,
        lambda r: (
            f"saved {r['episodes']}/{r['attempted']} episodes ({r['frames']} frames) of "
            f"'{r['task']}' to {r['dataset']}; expert success rate {r['success_rate']:.2f} "
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
    import torch

    from robot_policy.policies import load_policy
    from robot_policy.policies.device import select_device
    from robot_policy.runtime.evaluate import evaluate

    torch.set_num_threads(args.threads)
    policy = load_policy(args.checkpoint, device=select_device(args.device))
    if args.inference_steps is not None:
        policy.set_inference_steps(args.inference_steps)
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
            f"mean length {r['mean_episode_length']:.1f} steps, chunk {r['mean_chunk_ms']:.1f} ms"
        ),
    )
    return 0


def _format_info(info: dict) -> str:
    lines = [f"{key}: {value}" for key, value in info.items() if not isinstance(value, dict)]
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {name}: {spec}" for name, spec in value.items()]
    return "\n".join(lines)


def _cmd_dataset(args: argparse.Namespace) -> int:
    from robot_policy.data import describe

    _emit(describe(args.dir), args.json, _format_info)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "sim":
        from robot_policy.sim import benchmark

        result = benchmark.run(seconds_per_case=args.seconds)
    elif args.suite == "safety":
        from robot_policy.safety import benchmark, benchmark_cbf

        joint, cbf = benchmark.run(), benchmark_cbf.run()
        result = {**joint, **cbf, "iterations": joint["iterations"]}
        result["cbf_iterations"] = cbf["iterations"]
    elif args.suite == "latency":
        return _bench_latency(args)
    else:
        from robot_policy.policies import benchmark, load_policy
        from robot_policy.pretrained import pretrained_path

        policy = load_policy(args.checkpoint or pretrained_path())
        if args.inference_steps is not None:
            policy.set_inference_steps(args.inference_steps)
        result = benchmark.run(policy, threads=args.threads)
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

    from robot_policy.policies import load_policy
    from robot_policy.pretrained import pretrained_path
    from robot_policy.runtime.latency_sweep import plot_sweep, sweep

    torch.set_num_threads(args.threads)
    policy = load_policy(args.checkpoint or pretrained_path())
    rows = sweep(
        policy,
        args.task,
        [float(v) for v in args.latencies.split(",")],
        [s.strip() for s in args.strategies.split(",")],
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
    """The best end-to-end path so far: the shipped pretrained policy drives the push task in
    PyBullet closed-loop (receding horizon) for a handful of seeded episodes."""
    import torch

    from robot_policy.policies import load_policy
    from robot_policy.pretrained import pretrained_path
    from robot_policy.runtime.evaluate import evaluate

    torch.set_num_threads(args.threads)
    checkpoint = pretrained_path()
    policy = load_policy(checkpoint)
    result = evaluate(policy, "push", args.episodes, seed=args.seed, progress=not args.json)
    report = {**result.as_dict(), "checkpoint": str(checkpoint), "policy": policy.config.type}
    _emit(
        report,
        args.json,
        lambda r: (
            f"robot-policy demo: shipped {r['policy']} policy, task 'push', PyBullet, closed loop\n"
            f"  success rate   {r['success_rate']:.2f} ({r['successes']}/{r['episodes']} episodes, "
            f"95% CI {r['ci95_low']:.2f}-{r['ci95_high']:.2f})\n"
            f"  episode length {r['mean_episode_length']:.1f} steps at 10 Hz\n"
            f"  chunk latency  {r['mean_chunk_ms']:.1f} ms mean ({args.threads} torch thread)\n"
            f"  safety filter  changed {r['safety_interventions']} of "
            f"{round(r['mean_episode_length'] * r['episodes'])} commands (rate limits)\n"
            f"  checkpoint     {r['checkpoint']}"
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


def build_parser() -> argparse.ArgumentParser:
    from robot_policy.sim import TASKS

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
        choices=["scripted"],
        help="teleop device (keyboard, gamepad and spacemouse arrive with the teleop issue)",
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
    p.add_argument(
        "--strategy",
        default="receding",
        choices=["receding", "ensemble"],
        help="chunk execution: receding horizon (DP) or temporal ensembling (ACT)",
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

    p = add("dataset", _cmd_dataset, "inspect a dataset")
    p.add_argument("action", choices=["info"])
    p.add_argument("dir", type=Path)

    p = add("bench", _cmd_bench, "benchmarks (results belong in BENCHMARKS.md)")
    p.add_argument("suite", choices=["sim", "inference", "safety", "latency"])
    p.add_argument("--seconds", type=float, default=2.0, help="sim: measuring time per case")
    p.add_argument("--threads", type=int, default=1, help="inference: torch intra-op threads")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="inference: checkpoint to time (default: the shipped one)",
    )
    _add_inference_steps(p)
    p.add_argument("--task", default="push", help="latency: task to evaluate on")
    p.add_argument("--episodes", type=int, default=50, help="latency: episodes per point")
    p.add_argument("--latencies", default="0,100,200,300", help="latency: ms, comma-separated")
    p.add_argument(
        "--strategies", default="receding,ensemble", help="latency: comma-separated strategies"
    )
    p.add_argument("--plot", type=Path, default=None, help="latency: write a PNG plot here")

    p = add("demo", _cmd_demo, "the main job on the embedded default")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=100000)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
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
