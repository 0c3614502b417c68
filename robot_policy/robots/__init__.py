"""Robot descriptions: joint names, limits and link indices read from the robot's URDF."""

from robot_policy.robots.description import GRIPPER, Joint, RobotDescription, panda

__all__ = ["GRIPPER", "Joint", "RobotDescription", "panda"]
