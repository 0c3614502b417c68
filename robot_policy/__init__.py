"""robot_policy: a ROS 2 robot learning workbench.

Everything outside `robot_policy.nodes` is a plain Python library and imports no rclpy.
"""

__version__ = "0.1.0"
