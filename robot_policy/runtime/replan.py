"""What a new chunk is told about the plan it takes over from (real-time chunking, warm start).

When a chunk is requested the robot is still executing earlier ones, and keeps doing so until
the new chunk lands d steps later. Those actions are committed: real-time chunking makes the
new chunk reproduce them (and lean toward the rest of the old plan), a warm start begins
sampling from the old plan instead of from pure noise. Both read the plan from the scheduler,
so the simulated evaluation and the live runtime hand the policy the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robot_policy.runtime.chunks import ChunkScheduler


@dataclass(frozen=True)
class PlanHints:
    """Keyword arguments for `ChunkPolicy.predict_chunk`, in the policy's chunk frame (index 0
    is `now_index` steps before the observation): `prefix` (m, A) with its first
    `prefix_steps` committed, and/or `init` (horizon, A)."""

    prefix: np.ndarray | None = None
    prefix_steps: int = 0
    init: np.ndarray | None = None

    def policy_kwargs(self, device: torch.device | str) -> dict[str, Any]:
        """As batch-1 tensors on `device` (empty when there is nothing to hint)."""
        kwargs: dict[str, Any] = {}
        if self.prefix is not None:
            kwargs["prefix"] = torch.as_tensor(self.prefix, dtype=torch.float32)[None].to(device)
            kwargs["prefix_steps"] = self.prefix_steps
        if self.init is not None:
            kwargs["init"] = torch.as_tensor(self.init, dtype=torch.float32)[None].to(device)
        return kwargs


def plan_hints(
    scheduler: ChunkScheduler,
    stamp: float,
    dt: float,
    now_index: int,
    horizon: int,
    *,
    rtc: bool,
    warm_start: bool,
) -> PlanHints:
    """Hints for a chunk computed from the observation at `stamp`.

    The plan is read from `now_index` steps before the stamp, so the new chunk's window (which
    starts there) is covered from its first step; the committed part is those past steps plus
    the scheduler's estimate of the coming delay. Without any plan (the first chunk, or after
    the chunks ran out) there is nothing to agree with, and no hints are given. The init is the
    plan held at its last action to the full horizon.
    """
    if not (rtc or warm_start):
        return PlanHints()
    plan = scheduler.plan(stamp - now_index * dt, dt, horizon)
    if len(plan) <= now_index:
        return PlanHints()
    hints: dict[str, Any] = {}
    if rtc:
        committed = now_index + scheduler.expected_delay_steps()
        hints.update(prefix=plan, prefix_steps=min(committed, len(plan)))
    if warm_start:
        hints["init"] = np.concatenate([plan, np.repeat(plan[-1:], horizon - len(plan), axis=0)])
    return PlanHints(**hints)
