"""Energy tank: a budget on the kinetic energy the commanded motion may build up.

The passivity-based safe-RL idea is to let a learned controller inject energy only from a finite
tank, so that however it misbehaves, the energy it can bring to an impact is bounded. A
position-controlled arm gives us no measured port power (τ·q̇), so the model here is the
commanded motion's kinetic energy under a diagonal inertia proxy, K = ½·q̇ᵀ·diag(m)·q̇:
accelerating draws ΔK from the tank, braking returns it, and a slow refill (a leak the other way)
lets a stopped arm start again. When the tank is empty the velocity is scaled down so that
ΔK equals what is left. The proxy ignores configuration-dependent inertia and gravity; treat it
as a rate-shaped energy limit, not a passivity certificate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class EnergyTank:
    """Stateful per-tick scaler of the arm's joint velocity; `step` once per control tick."""

    def __init__(
        self,
        inertia: Sequence[float],
        capacity: float,
        refill_rate: float = 0.0,
    ) -> None:
        self.inertia = np.asarray(inertia, dtype=float)
        if self.inertia.ndim != 1 or not np.all(self.inertia > 0):
            raise ValueError(f"inertia: need positive values, got {inertia!r}")
        if not (capacity > 0 and refill_rate >= 0):
            raise ValueError("capacity must be positive and refill_rate non-negative")
        self.capacity = float(capacity)
        self.refill_rate = float(refill_rate)
        self.energy = self.capacity
        self._kinetic = 0.0  # of the last velocity let through

    def reset(self) -> None:
        """Full tank, arm at rest."""
        self.energy = self.capacity
        self._kinetic = 0.0

    def step(self, velocity: object, dt: float) -> tuple[np.ndarray, float, tuple[str, ...]]:
        """(velocity to command, scale applied, reasons); bad input becomes a stop, not a raise."""
        try:
            v = np.asarray(velocity, dtype=float)
        except (TypeError, ValueError):
            v = np.full(self.inertia.shape, np.nan)
        if v.shape != self.inertia.shape or not np.all(np.isfinite(v)) or not dt > 0:
            self._kinetic = 0.0
            return np.zeros_like(self.inertia), 0.0, ("energy:bad_input",)
        self.energy = min(self.capacity, self.energy + self.refill_rate * dt)
        kinetic = 0.5 * float(v @ (self.inertia * v))
        injected = kinetic - self._kinetic
        if injected <= self.energy:
            self.energy = min(self.capacity, self.energy - injected)
            self._kinetic = kinetic
            return v, 1.0, ()
        # Spend what is left: ½·s²·vᵀMv = K_prev + E.
        allowed = self._kinetic + self.energy
        scale = float(np.sqrt(allowed / kinetic))
        self.energy = 0.0
        self._kinetic = allowed
        return v * scale, scale, ("energy:tank_empty",)
