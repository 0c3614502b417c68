"""Every `robot-policy` command line quoted in README.md and BENCHMARKS.md still parses, and
the CLI's inference choices are the inference module's."""

import re
import shlex
from pathlib import Path

import pytest

from robot_policy.cli import build_parser
from robot_policy.cli.common import DEVICE_CHOICES, PRECISION_CHOICES

ROOT = Path(__file__).resolve().parents[1]


def quoted_commands() -> list[str]:
    lines = []
    for doc in ("README.md", "BENCHMARKS.md"):
        text = (ROOT / doc).read_text().replace("\\\n", " ")
        spans = re.findall(r"`(robot-policy [^`]+)`", text)
        blocks = re.findall(r"^(robot-policy .+)$", text, flags=re.MULTILINE)
        for line in spans + blocks:
            line = line.split("  #")[0].split(" # ")[0].strip()
            words = line.split()
            if re.search(r"\b[A-Z]+\b|\.\.\.|\[|<", line.removeprefix("robot-policy")):
                continue  # a placeholder (CKPT, DIR, K, [--flag], <name>), not a command
            if len(words) <= 3 and words[1] not in ("bench", "demo"):
                continue  # prose naming a command or a flag of it, not a command line
            lines.append(line)
    return sorted(set(lines))


@pytest.mark.parametrize("line", quoted_commands())
def test_documented_command_parses(line):
    build_parser().parse_args(shlex.split(line)[1:])


def test_there_are_documented_commands():
    assert len(quoted_commands()) > 20


def test_inference_choices_are_the_inference_modules():
    from robot_policy.policies.inference import PRECISION_CHOICES as precisions
    from robot_policy.policies.inference import InferenceSettings
    from robot_policy.settings import flatten

    fields = {p.name: p for p in flatten(InferenceSettings)}
    assert PRECISION_CHOICES == precisions == fields["precision"].choices
    assert DEVICE_CHOICES == fields["device"].choices
