"""The safety filter: joint limits, watchdog and e-stop, plus optional workspace box, obstacle
barriers (for the end effector and, with the whole-arm keep-out, every link) and energy tank,
configured from config/safety/<robot>.yaml.

A software filter, not a safety-rated function: the hardware e-stop and the robot's own safety
controller stay primary.
"""

from robot_policy.safety.config import EnergyConfig, LinksConfig, SafetyConfig
from robot_policy.safety.filter import FilterResult, SafetyFilter
from robot_policy.safety.limits import GRIPPER, SafetyLimits
from robot_policy.safety.watchdog import Freshness, Watchdog

__all__ = [
    "GRIPPER",
    "EnergyConfig",
    "FilterResult",
    "Freshness",
    "LinksConfig",
    "SafetyConfig",
    "SafetyFilter",
    "SafetyLimits",
    "Watchdog",
]
