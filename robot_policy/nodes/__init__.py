"""rclpy nodes: thin adapters from topics and parameters to the ROS-free core.

Each node lives in its own module with a `main` (the console scripts point there); its
parameters are a dataclass schema in `nodes.parameters` (rclpy-free), which launch files and
graph YAMLs are checked against.
"""
