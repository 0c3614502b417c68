"""A wheel install (not editable) finds its config files: graphs, safety YAMLs, sim config."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from pathlib import Path
import robot_policy
from robot_policy.settings import config_path
from robot_policy.safety import SafetyConfig
from robot_policy.graph.runner import DEFAULT_GRAPH
site = Path(sys.argv[1]).resolve()
assert Path(robot_policy.__file__).resolve().is_relative_to(site), robot_policy.__file__
for path in (config_path("sim_graph.yaml"), config_path("safety", "panda.yaml"), DEFAULT_GRAPH):
    assert Path(path).is_file() and Path(path).resolve().is_relative_to(site), path
SafetyConfig.for_robot("panda")
print("ok")
"""


def test_a_wheel_install_loads_config_from_the_installed_package(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(ROOT, source, ignore=skip)
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("robot_policy-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    # From a folder outside the checkout, with the wheel's copy first on the path.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
