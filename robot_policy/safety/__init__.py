"""Joint-space safety filter: position, velocity, acceleration and jerk limits, e-stop, watchdog.

A software filter, not a safety-rated function: the hardware e-stop and the robot's own safety
controller stay primary.
"""

from robot_policy.safety.filter import FilterResult, SafetyFilter
from robot_policy.safety.limits import GRIPPER, SafetyLimits
from robot_policy.safety.watchdog import Freshness, Watchdog

__all__ = ["GRIPPER", "FilterResult", "Freshness", "SafetyFilter", "SafetyLimits", "Watchdog"]
