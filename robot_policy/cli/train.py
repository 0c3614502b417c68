"""`robot-policy train`: a diffusion or flow policy from a dataset; writes a checkpoint folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_policy.cli.common import camera_list, command, emit, parse_overrides


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", run, "train a diffusion or flow policy; writes a checkpoint folder")
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
    p.add_argument(
        "--frame-cache-mb",
        type=int,
        default=4096,
        help="decoded camera frames kept in memory per data process, MiB: a dataset that fits "
        "is decoded once, not once per epoch (0: the reader's small LRU)",
    )
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="also keep the policy of every checkpoint in OUT/checkpoints/<step>/ (EMA weights, "
        "loadable as a checkpoint), to pick the best by evaluation",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/training_state.pt")
    p.add_argument(
        "--cameras",
        type=camera_list,
        default=(),
        metavar="front",
        help="train an image policy on these cameras (+ robot state)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "auto"],
        help="bf16: forward passes under bfloat16 autocast (fp32 weights and optimizer); auto: "
        "bf16 where the CPU computes it natively, else fp32",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="policy config override, e.g. --set horizon=16 --set down_dims=[64,128,256]",
    )


def run(args: argparse.Namespace) -> int:
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
        frame_cache_mb=args.frame_cache_mb,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        resume=args.resume,
        cameras=args.cameras,
        policy_overrides=parse_overrides(args.set),
        precision=args.precision,
    )
    result = train(settings, progress=not args.json)
    if result is not None:
        emit(
            result,
            args.json,
            lambda r: (
                f"trained {r['policy']} for {r['steps']} steps in {r['seconds']:.0f} s: "
                f"loss {r['first_loss']:.4f} -> {r['final_loss']:.4f}; checkpoint {r['checkpoint']}"
            ),
        )
    return 0
