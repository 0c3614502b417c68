"""One episode of a dataset in Rerun: the robot model moving as recorded, cameras, joints, actions.

The PNGs of `viz.py` are for a box without a display; this is for looking at a recording the
way one looks at a live robot: scrub the timeline and see the arm (its URDF, animated from
`observation.state`), every camera frame, and each joint against its commanded action. Saved
as an .rrd file (`rerun out.rrd` opens it) or streamed to a viewer spawned here. rerun-sdk is
an optional dependency (`pip install 'robot_policy[viz]'`): the default install stays small.

Timelines: `time` (the frame's timestamp within the episode) and `frame` (its index).
Entities: `robot/...` (the URDF's links; joint transforms on `robot/joints/<joint>`),
`cameras/<name>`, `<feature>/<dimension name>` scalars (state, action, environment state),
`task` (the episode's instruction).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robot_policy.robots import load_robot
from robot_policy.robots.description import RobotDescription

from .layout import DEFAULT_FEATURES
from .reader import LeRobotDataset
from .viz import dimension_names

STATE = "observation.state"


def viz_module(name: str) -> Any:
    """`rerun` or `foxglove` (the `viz` extra), or an error that says how to get it."""
    try:
        return __import__(name)
    except ImportError as exc:
        package = {"rerun": "rerun-sdk>=0.41", "foxglove": "foxglove-sdk>=0.30"}[name]
        raise RuntimeError(
            f"the {name} view needs {package}: pip install 'robot_policy[viz]'"
        ) from exc


def log_episode(
    root: str | Path, episode: int, *, save: str | Path | None = None, spawn: bool = False
) -> dict[str, Any]:
    """Log `episode` to a new recording: into `save` (.rrd) if given, else to a spawned viewer."""
    if (save is None) == (not spawn):
        raise ValueError("give exactly one of save (an .rrd path) or spawn")
    rr = viz_module("rerun")
    ds = LeRobotDataset(root, frame_cache_size=0)
    if not 0 <= episode < ds.num_episodes:
        raise ValueError(
            f"episode {episode} does not exist in {ds.root} (it has 0..{ds.num_episodes - 1})"
        )
    start, end = ds.episode_bounds(episode)
    rec = rr.RecordingStream("robot_policy", recording_id=f"{ds.root.name}/episode_{episode}")
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        rec.save(str(save))
    else:
        rec.spawn()
    frames = ds.column("frame_index")[start:end]
    times = ds.column("timestamp")[start:end].astype(np.float64)

    index = [rr.TimeColumn("time", duration=times), rr.TimeColumn("frame", sequence=frames)]

    task = ds.tasks[int(ds.column("task_index")[start])]
    rec.log("task", rr.TextDocument(task), static=True)
    numeric = [k for k in ds.features if k not in ds.camera_keys and k not in DEFAULT_FEATURES]
    entities = []
    for key in numeric:
        values = np.asarray(ds.column(key)[start:end], dtype=np.float64).reshape(end - start, -1)
        for i, name in enumerate(dimension_names(ds, key)):
            entities.append(f"{key}/{name}")
            rec.send_columns(entities[-1], indexes=index, columns=rr.Scalars.columns(
                scalars=values[:, i]))  # fmt: skip
    for key in ds.camera_keys:
        entity = "cameras/" + key.rsplit(".", 1)[-1]
        entities.append(entity)
        images = ds.frames(key, np.arange(start, end))
        for k, image in enumerate(images):
            rec.set_time("time", duration=float(times[k]))
            rec.set_time("frame", sequence=int(frames[k]))
            rec.log(entity, rr.Image(image))
    robot = _log_robot(rr, rec, ds, start, end, index)
    rec.flush()
    if save is not None:
        rec.disconnect()
    return {
        "dataset": str(ds.root),
        "episode": episode,
        "frames": end - start,
        "task": task,
        "robot": robot,
        "entities": entities,
        "rrd": str(save) if save is not None else None,
    }


def _log_robot(
    rr: Any, rec: Any, ds: LeRobotDataset, start: int, end: int, index: list[Any]
) -> str | None:
    """The robot's URDF, its joints animated from observation.state; None when the dataset's
    robot or state layout is not one we describe (then there is nothing to animate)."""
    robot_type = ds.info.get("robot_type")
    try:
        robot = load_robot(robot_type)
    except (KeyError, ValueError, TypeError):
        return None
    names = ds.features.get(STATE, {}).get("names")
    if names != robot.command_names:
        return None
    state = np.asarray(ds.column(STATE)[start:end], dtype=np.float64)
    tree = log_robot_model(rr, rec, robot)
    positions = {name: state[:, i] for i, name in enumerate(robot.arm_joint_names)}
    for finger in robot.fingers:  # the width is the sum of the finger openings
        positions[finger.name] = state[:, -1] / len(robot.fingers)
    for name, values in positions.items():
        joint = tree.get_joint_by_name(name)
        rec.send_columns(f"robot/joints/{name}", indexes=index,
                         columns=joint.compute_transform_columns(values, clamp=False))  # fmt: skip
    return robot_type


def log_robot_model(rr: Any, rec: Any, robot: RobotDescription) -> Any:
    """Log the robot's URDF (links, meshes, static transforms) under `robot/`; its UrdfTree,
    whose joints give the transforms that animate it."""
    # pybullet_data's URDFs name meshes package://meshes/...: the package is the URDF's folder.
    saved = os.environ.get("ROS_PACKAGE_PATH")
    os.environ["ROS_PACKAGE_PATH"] = os.pathsep.join(
        p for p in (str(robot.urdf_path.parent), saved) if p
    )
    try:
        tree = rr.urdf.UrdfTree.from_file_path(robot.urdf_path, entity_path_prefix="robot")
        tree.log_urdf_to_recording(rec)
    finally:
        if saved is None:
            os.environ.pop("ROS_PACKAGE_PATH")
        else:
            os.environ["ROS_PACKAGE_PATH"] = saved
    return tree
