"""ament_python package for robot_policy; also a plain pip-installable package.

`sim/` is a top-level folder (ARCHITECTURE.md) that installs as `robot_policy.sim`, so nothing
claims a generic top-level module name.
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robot_policy"
# Every robot_policy/nodes/*_node.py is a node executable with a `main`.
NODES = sorted(Path(path).stem for path in glob(f"{PACKAGE}/nodes/*_node.py"))

core_packages = find_packages(include=[PACKAGE, f"{PACKAGE}.*"])
sim_packages = [f"{PACKAGE}.sim"] + [f"{PACKAGE}.sim.{p}" for p in find_packages(where="sim")]
# config/ (YAML only) installs as the data package robot_policy.config, so that
# `robot_policy.settings.config_path` finds it in a wheel install as in a checkout.
config_packages = [f"{PACKAGE}.config", f"{PACKAGE}.config.safety"]

ROS_WHEELS = [
    # PyPI builds of ROS 2 (Kilted) for machines without an apt ROS 2 install.
    "ros-rclpy>=9.1",
    "ros-rmw-fastrtps-cpp>=9.3",
    "ros-std-msgs>=5.5",
    "ros-sensor-msgs>=5.5",
    "ros-geometry-msgs>=5.5",
    "ros-trajectory-msgs>=5.5",
    "ros-std-srvs>=5.5",
    "ros-diagnostic-msgs>=5.5",
    "ros-visualization-msgs>=5.5",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Robot learning workbench on ROS 2: demonstrations to action-chunk policies behind a safety filter",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=core_packages + sim_packages + config_packages,
    package_dir={f"{PACKAGE}.sim": "sim", f"{PACKAGE}.config": "config"},
    package_data={
        f"{PACKAGE}.pretrained": ["*/config.json", "*/model.safetensors", "*/README.md"],
        f"{PACKAGE}.config": ["*.yaml"],
        f"{PACKAGE}.config.safety": ["*.yaml"],
    },
    include_package_data=False,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/safety", glob("config/safety/*.yaml")),
    ],
    install_requires=[
        "numpy>=1.26",
        "pybullet>=3.2.6",
        "gymnasium>=1.0",
        "pyarrow>=15.0",
        "av>=12.0",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        # torch itself is installed first, pinned to the CPU wheel (Makefile); this bound admits it.
        "torch>=2.3",
        "diffusers>=0.30",
        "safetensors>=0.4",
        "matplotlib>=3.8",
        # Dense QP for the safety filter's barrier constraints: exact, microseconds at this size.
        "quadprog>=0.1.14",
        # Rigid-body kinematics from the URDF for the safety filter and teleop IK: FK and
        # Jacobian in one pass, ~2 µs (PyBullet's took ~20 µs, several times per tick).
        "pin>=3.4",
        # Camera capture, undistortion and resizing; headless: nodes never open a window.
        "opencv-python-headless>=4.8",
        # Teleop: gamepads through SDL2 (headless with its dummy video driver); SpaceMouse over
        # HID (needs the hidapi C library at run time: apt install libhidapi-hidraw0).
        "pygame>=2.6",
        "pyspacemouse>=2.1",
        # rosbag2 MCAP import, decoded from the schemas in the file (no ROS install needed).
        "mcap-ros2-support>=0.5",
    ],
    extras_require={
        "ros": ROS_WHEELS,
        # datasets + pandas: the LeRobot-compatibility test loads datasets the way LeRobot does.
        "dev": ["pytest>=8.0", "hypothesis>=6.100", "ruff>=0.5", "datasets>=3.0"],
        # `dataset viz --viewer rerun` and viz_node (Rerun's URDF tree and .rrd reader arrived
        # in 0.41; Foxglove's JointStates schema in 0.30).
        "viz": ["rerun-sdk>=0.41", "foxglove-sdk>=0.30"],
    },
    tests_require=["pytest"],
    zip_safe=False,
    entry_points={
        "console_scripts": [f"robot-policy = {PACKAGE}.cli:main"]
        + [f"{node} = {PACKAGE}.nodes.{node}:main" for node in NODES],
    },
)
