"""Robot descriptions: joint names, limits and link indices read from the robot's URDF."""

from robot_policy.robots.description import Joint, RobotDescription, panda

__all__ = ["Joint", "RobotDescription", "panda"]
