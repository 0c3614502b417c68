"""The `robot-policy` command: one entry point for collecting, training, evaluating, inspecting,
benchmarking and running graphs; one module per command group.

Heavy imports (pyarrow, torch, diffusers, rclpy) happen inside each subcommand so `--help`
stays fast. With `--json`, the last line of stdout is one JSON object; progress bars go to
stderr.
"""

from __future__ import annotations

import argparse
import sys

from robot_policy import __version__
from robot_policy.cli import bench, collect, dataset, eval, train, up

GROUPS = (collect, train, eval, dataset, bench, up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-policy",
        description="Robot learning workbench on ROS 2: demonstrations to action-chunk policies.",
    )
    parser.add_argument("--version", action="version", version=f"robot-policy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
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
