"""The `robot-policy` command."""
import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robot-policy")
    parser.parse_args(argv)
    return 0
