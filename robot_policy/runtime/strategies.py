"""Chunk-execution strategies: the one registry the scheduler, evaluation, the graph and the CLI
read, so a strategy's name, what it needs and where it runs are written once.

A strategy is two halves: how the control side stitches chunks (`stitching`, the scheduler's
business) and how the policy side makes them (plain sampling, sampling told the committed plan,
or a streaming buffer). A strategy whose policy half needs something the ROS graph does not
carry says so in `ros_refusal`, and is refused before any node starts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    stitching: str  # the scheduler's mode: "receding" (newest chunk wins) or "ensemble"
    replan_every_step: bool = False  # a new chunk every action step (temporal ensembling)
    needs_plan: bool = False  # the policy is told the actions already committed
    needs_streaming: bool = False  # needs a checkpoint trained with streaming=true
    ros_refusal: str | None = None  # why the ROS graph cannot run it; None: it can


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "receding",
            "receding horizon (Diffusion Policy): execute n_action_steps of each chunk, re-plan",
            stitching="receding",
        ),
        Strategy(
            "ensemble",
            "temporal ensembling (ACT): re-plan every step, average every chunk covering now",
            stitching="ensemble",
            replan_every_step=True,
        ),
        Strategy(
            "rtc",
            "real-time chunking: each chunk is generated to agree with the actions committed "
            "while it is computed",
            stitching="receding",
            needs_plan=True,
            ros_refusal="policy_node is not sent the control node's committed plan, which rtc "
            "conditions on; run rtc in-process (eval without --ros)",
        ),
        Strategy(
            "streaming",
            "streaming diffusion: chunks from a rolling, partially denoised buffer (needs a "
            "checkpoint trained with streaming=true)",
            stitching="receding",
            needs_streaming=True,
            ros_refusal="policy_node keeps no streaming buffer; run streaming in-process "
            "(eval without --ros)",
        ),
    )
}
NAMES: tuple[str, ...] = tuple(STRATEGIES)
STITCHING: tuple[str, ...] = tuple(dict.fromkeys(s.stitching for s in STRATEGIES.values()))


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; an unknown name is an error listing the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {NAMES}") from None


def strategies_for(config: object) -> tuple[str, ...]:
    """The strategies a checkpoint with policy `config` can run: streaming needs a checkpoint
    trained with streaming=true."""
    streams = bool(getattr(config, "streaming", False))
    return tuple(n for n, s in STRATEGIES.items() if streams or not s.needs_streaming)


def check_ros(name: str) -> Strategy:
    """The strategy, if the ROS graph can run it; else a ValueError saying why."""
    strategy = get_strategy(name)
    if strategy.ros_refusal is not None:
        raise ValueError(f"strategy {name} cannot run through ROS: {strategy.ros_refusal}")
    return strategy


def help_text() -> str:
    """One line per strategy, for `--strategy`'s help."""
    return "; ".join(f"{s.name}: {s.description}" for s in STRATEGIES.values())
