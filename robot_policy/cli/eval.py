"""`robot-policy eval` and `robot-policy demo`: closed-loop episodes in-process or through ROS.

In-process, the checkpoint is prepared by the one inference set-up (`policies.inference`) with
policy_node's defaults, and runs the one control loop on simulated time with the robot's safety
configuration (`eval.evaluate`). `--ros` and the demo run the same checkpoint through the graph.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_policy.cli.common import (
    SIM_CONFIG_HELP,
    add_inference_arguments,
    command,
    emit,
    inference_settings,
    precision_for,
    ros_report,
    sim_config,
)
from robot_policy.runtime.strategies import NAMES, help_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    from robot_policy.sim import TASKS

    p = command(sub, "eval", run, "closed-loop evaluation of a checkpoint in sim")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument(
        "--seed",
        type=int,
        default=100000,
        help="episode k uses seed SEED+k (default keeps clear of collection seeds)",
    )
    add_inference_arguments(p)
    p.add_argument("--strategy", default="receding", choices=NAMES, help=help_text())
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
        "--rate-hz",
        type=float,
        default=None,
        help="in-process: the control loop's rate, over the simulated arm as the graph drives "
        "it (one-point trajectories to a 240 Hz physics); default control_node's (100 Hz), which "
        "predicts what the graph does; 0: one tick per action over the env, as collection "
        "executed the demonstrations",
    )
    p.add_argument(
        "--ros",
        action="store_true",
        help="run the episodes through the ROS 2 graph (sim_node + policy_node + control_node "
        "over DDS, real time) instead of in-process",
    )
    p.add_argument(
        "--graph",
        type=Path,
        default=None,
        help="--ros: graph parameter file (default config/sim_graph.yaml)",
    )
    p.add_argument(
        "--backend",
        choices=("robot_policy", "lerobot"),
        default="robot_policy",
        help="--ros: lerobot = CHECKPOINT is a LeRobot pretrained_model folder, run by "
        "policy_node in LeRobot's own Python (make lerobot-env)",
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

    p = command(sub, "demo", demo, "the main job on the embedded default")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=100000)
    p.add_argument(
        "--policy",
        choices=("state", "image"),
        default="state",
        help="state: the shipped policy that reads the cube's pose; image: the shipped policy "
        "that sees the front camera and the arm's joints (sim_node renders the camera)",
    )
    p.add_argument(
        "--load",
        action="store_true",
        help="run beside a CPU hog: one busy process per core at the user's niceness "
        "(robot_policy.bench.hog), as a desktop's other work would be",
    )


def run(args: argparse.Namespace) -> int:
    if args.ros:
        return _eval_ros(args)
    if args.backend != "robot_policy":
        raise ValueError("--backend lerobot runs the policy through the graph: add --ros")
    import torch

    from robot_policy.eval.evaluate import evaluate
    from robot_policy.policies.inference import prepare_policy
    from robot_policy.runtime.controller import ControlConfig

    precision = precision_for([args.strategy], args.checkpoint, args.precision)
    torch.set_num_threads(args.threads)
    policy, _ = prepare_policy(args.checkpoint, inference_settings(args, precision=precision))
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
        sim_config=sim_config(args.sim_config),
        video_path=args.save_video,
        plot_path=args.save_plot,
        progress=not args.json,
        rate_hz=ControlConfig.rate_hz if args.rate_hz is None else args.rate_hz or None,
    )
    emit(
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


def _eval_ros(args: argparse.Namespace) -> int:
    from robot_policy.graph.referee import evaluate_ros
    from robot_policy.graph.runner import DEFAULT_GRAPH

    if args.rate_hz is not None:
        raise ValueError("--rate-hz is for in-process evaluation; the graph runs at its own rate")
    if (args.device, args.threads, args.precision) != ("auto", 1, "auto"):
        raise ValueError(
            "--ros: device, threads and precision are policy_node parameters; set them in the "
            "graph file (--graph) so the graph runs what you measure"
        )
    result = evaluate_ros(
        args.task,
        args.episodes,
        seed=args.seed,
        checkpoint=args.checkpoint,
        strategy=args.strategy,
        inference_steps=args.inference_steps,
        graph_path=args.graph or DEFAULT_GRAPH,
        sim_config=args.sim_config,
        progress=not args.json,
        backend=args.backend,
    )
    emit(
        result.as_dict(),
        args.json,
        lambda r: f"{r['task']} through the ROS 2 graph ({r['strategy']}):\n" + ros_report(r),
    )
    return 0


def demo(args: argparse.Namespace) -> int:
    """The main job: the shipped pretrained policy pushes a cube in PyBullet, closed loop
    through the ROS 2 graph — sim_node, policy_node and control_node (100 Hz loop + safety
    filter) as separate processes over DDS, on an isolated local domain."""
    from contextlib import nullcontext

    from robot_policy.bench.hog import cpu_hog
    from robot_policy.graph.referee import evaluate_ros
    from robot_policy.policies import read_checkpoint_config
    from robot_policy.pretrained import DEFAULT, IMAGE, pretrained_path

    checkpoint = pretrained_path(IMAGE if args.policy == "image" else DEFAULT)
    config, _ = read_checkpoint_config(checkpoint)
    with cpu_hog() if args.load else nullcontext(0) as hogs:
        result = evaluate_ros(
            "push", args.episodes, seed=args.seed, checkpoint=checkpoint, progress=not args.json
        )
    report = {
        **result.as_dict(),
        "checkpoint": str(checkpoint),
        "policy_type": config.type,
        "load_processes": hogs,
    }
    emit(
        report,
        args.json,
        lambda r: (
            f"robot-policy demo: shipped {r['policy_type']} {args.policy} policy, task 'push', "
            "PyBullet, "
            "closed loop through ROS 2 (sim_node -> policy_node -> control_node)"
            + (f", beside {r['load_processes']} busy processes" if r["load_processes"] else "")
            + "\n"
            + ros_report(r)
            + f"\n  checkpoint     {r['checkpoint']}"
        ),
    )
    return 0
