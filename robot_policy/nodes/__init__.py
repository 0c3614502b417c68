"""rclpy nodes: thin adapters from topics and parameters to the ROS-free core.

Each node lives in its own module with a `main` (the console scripts point there) and a
`PARAMETERS` table (name: (default, description)) that launch files and graph YAMLs are checked
against.
"""
