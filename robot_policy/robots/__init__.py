"""Robot descriptions: joint names, limits and link indices read from the robot's URDF."""

from robot_policy.robots.description import GRIPPER, Joint, RobotDescription
from robot_policy.robots.registry import DEFAULT_ROBOT, ROBOTS, load_robot

__all__ = ["DEFAULT_ROBOT", "GRIPPER", "ROBOTS", "Joint", "RobotDescription", "load_robot"]
