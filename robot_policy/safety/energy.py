"""Energy tank: a budget on the kinetic energy the commanded motion may build up.

The passivity-based safe-RL idea is to let a learned controller inject energy only from a finite
tank, so that however it misbehaves, the energy it can bring to an impact is bounded. A
position-controlled arm gives us no measured port power (τ·q̇), so the model here is the
commanded motion's kinetic energy under a diagonal inertia proxy, K = ½·q̇ᵀ·diag(m)·q̇:
accelerating draws ΔK from the tank, braking returns it, and a slow refill (a leak the other way)
caps the sustained power at `refill_rate` W while `capacity` J bounds a burst. The proxy ignores
configuration-dependent inertia and gravity; treat it as a rate-shaped energy limit, not a
passivity certificate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class EnergyTank:
    """Per tick: `limit` a proposed arm velocity, then `commit` the velocity actually sent.

    Scaling toward zero could break the acceleration limit, so `limit` moves a proposal toward
    an `anchor` the caller guarantees is within every other limit and carries no more energy
    than the last committed velocity (the braking step): the largest step toward the proposal
    that the tank can pay for.
    """

    def __init__(self, inertia: Sequence[float], capacity: float, refill_rate: float) -> None:
        self.inertia = np.asarray(inertia, dtype=float)
        if self.inertia.ndim != 1 or not np.all(self.inertia > 0):
            raise ValueError(f"inertia: need positive values, got {inertia!r}")
        if not (capacity > 0 and refill_rate >= 0):
            raise ValueError("capacity must be positive and refill_rate non-negative")
        self.capacity = float(capacity)
        self.refill_rate = float(refill_rate)
        self.energy = self.capacity
        self._kinetic = 0.0  # of the last committed velocity

    def kinetic(self, velocity: np.ndarray) -> float:
        return 0.5 * float(velocity @ (self.inertia * velocity))

    def limit(self, anchor: np.ndarray, proposal: np.ndarray, dt: float) -> tuple[np.ndarray, bool]:
        """(velocity on the segment anchor → proposal, whether the tank shortened it).

        Refills the tank by one tick first. The budget is the last kinetic energy plus what the
        tank holds; K along the segment is a convex quadratic, so its largest affordable point
        is a root, and every point before it is affordable too.
        """
        self.energy = min(self.capacity, self.energy + self.refill_rate * dt)
        budget = self._kinetic + self.energy
        if self.kinetic(proposal) <= budget:
            return proposal, False
        step = proposal - anchor
        a = self.kinetic(step)  # K(anchor + s·step) = K(anchor) + s·b + s²·a
        b = float(anchor @ (self.inertia * step))
        c = self.kinetic(anchor) - budget  # <= 0 for a valid anchor
        s = (-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
        return anchor + float(np.clip(s, 0.0, 1.0)) * step, True

    def commit(self, velocity: np.ndarray) -> None:
        """Pay for (or be refunded) the change of kinetic energy to `velocity`."""
        kinetic = self.kinetic(velocity)
        self.energy = float(np.clip(self.energy - (kinetic - self._kinetic), 0.0, self.capacity))
        self._kinetic = kinetic
