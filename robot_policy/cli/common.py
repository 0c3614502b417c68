"""What the command groups share: `--json` output, argument types and the inference flags.

The inference flags mirror `policies.inference.InferenceSettings` (policy_node's parameters of
the same names): `eval`, `bench inference` and `bench loop` prepare a checkpoint exactly as the
graph does. Choices are spelled out here so that `--help` imports no torch; a test keeps them
equal to the inference module's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing these at parse time would slow `--help`
    from robot_policy.policies.inference import InferenceSettings
    from robot_policy.sim import SimConfig

SIM_CONFIG_HELP = (
    "sim randomization and episode lengths (YAML like config/sim.yaml; default: its values)"
)
PRECISION_CHOICES = ("auto", "eager", "fp32", "bf16", "int8")
DEVICE_CHOICES = ("auto", "cpu", "cuda")

Handler = Callable[[argparse.Namespace], int]


def emit(result: dict, as_json: bool, human: Callable[[dict], str]) -> None:
    """Print `result` as one JSON line (for scripts and BENCHMARKS.md) or as `human` words it."""
    print(json.dumps(result) if as_json else human(result))


def command(
    sub: argparse._SubParsersAction, name: str, handler: Handler, help: str
) -> argparse.ArgumentParser:
    """A subcommand with `--json` that runs `handler`: every leaf command offers the same
    machine-readable output, so it is added in one place."""
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.set_defaults(handler=handler)
    return p


def camera_list(text: str) -> tuple[str, ...]:
    """`--cameras front,wrist` as a tuple of names (blanks dropped, so `front,` is `front`)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def sim_config(path: Path | None) -> SimConfig:
    """`--sim-config`'s YAML, or the defaults config/sim.yaml documents when it is not given."""
    from robot_policy.sim import SimConfig

    return SimConfig.from_yaml(path) if path else SimConfig()


def parse_overrides(items: list[str]) -> dict[str, Any]:
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


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --threads, --precision, --inference-steps: `InferenceSettings`' fields."""
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads for inference (default 1)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="CPU denoiser: auto (bf16 where the CPU has native bfloat16, else fp32), eager "
        "(the plain network), fp32, bf16, or int8 weights with bf16 activations; the same "
        "default as policy_node (BENCHMARKS.md)",
    )
    parser.add_argument(
        "--inference-steps",
        type=int,
        default=0,
        help="denoising/integration steps (0: the checkpoint's own)",
    )


def inference_settings(args: argparse.Namespace, **changes: Any) -> InferenceSettings:
    """The `InferenceSettings` the flags say (with `changes` applied)."""
    from robot_policy.policies.inference import InferenceSettings

    values = {
        "device": args.device,
        "threads": args.threads,
        "precision": args.precision,
        "inference_steps": args.inference_steps,
    }
    return InferenceSettings(**{**values, **changes})


def ros_report(r: dict) -> str:
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
        f"{c.get('deadline_misses')} deadline misses ({c.get('own_deadline_misses')} its own; "
        f"{c.get('machine_stalls')} stalls of the machine witnessed), jitter p99 "
        f"{c.get('jitter_ms_p99', float('nan')):.2f} ms"
        + ("" if c.get("realtime") else " (normal priority)")
        + "\n"
        f"  policy         inference p50 {p.get('latency_ms_p50', float('nan')):.1f} ms, "
        f"p99 {p.get('latency_ms_p99', float('nan')):.1f} ms ({p.get('precision')}"
        + ("" if p.get("inference_realtime") else ", normal priority")
        + f"), {p.get('published')} chunks\n"
        f"  safety filter  changed {c.get('safety_interventions')} of {c.get('ticks')} commands "
        f"({', '.join(f'{k} {v}' for k, v in (c.get('reasons') or {}).items()) or 'none'})"
    )


def precision_for(strategies: list[str], checkpoint: Path, precision: str) -> str:
    """`auto` made eager when a flow checkpoint runs a strategy told the committed plan (rtc):
    flow guidance back-propagates through the denoiser, which the fast path does not offer."""
    from robot_policy.policies import read_checkpoint_config
    from robot_policy.runtime.strategies import get_strategy

    config, _ = read_checkpoint_config(checkpoint)
    guided = any(get_strategy(name).needs_plan for name in strategies)
    return "eager" if precision == "auto" and guided and config.type == "flow" else precision
