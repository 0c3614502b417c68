"""Command-staleness watchdog: a policy that stops producing commands must not keep the arm moving.

Times are passed in, never read from a clock, so the same code runs under simulated time, ROS
time and tests. Defaults follow MoveIt Servo: `incoming_command_timeout` 0.1 s to hold, and a
longer 0.5 s after which the filter gives up on the last target and brakes to a stop.
"""

from __future__ import annotations

import enum

HOLD_TIMEOUT = 0.1  # s without a fresh command before holding (MoveIt Servo's default)
STOP_TIMEOUT = 0.5  # s before giving up on the last target and braking to a stop


class Freshness(enum.Enum):
    FRESH = "fresh"
    HOLD = "watchdog_hold"
    STOP = "watchdog_stop"


class Watchdog:
    """Tracks the time since the command source last proved it is alive via `feed`."""

    def __init__(
        self, hold_timeout: float = HOLD_TIMEOUT, stop_timeout: float = STOP_TIMEOUT
    ) -> None:
        if not 0 < hold_timeout <= stop_timeout:
            raise ValueError("need 0 < hold_timeout <= stop_timeout")
        self.hold_timeout = hold_timeout
        self.stop_timeout = stop_timeout
        self._last_feed: float | None = None

    def feed(self, now: float) -> None:
        self._last_feed = now

    def check(self, now: float) -> Freshness:
        """How stale the source is; the first check starts the clock, so a filter that is
        stepped but never fed holds after `hold_timeout` rather than running unwatched."""
        if self._last_feed is None:
            self._last_feed = now
        age = now - self._last_feed
        # Written as `not <=` so that a NaN time counts as stale, never as fresh.
        if not age <= self.stop_timeout:
            return Freshness.STOP
        if not age <= self.hold_timeout:
            return Freshness.HOLD
        return Freshness.FRESH
