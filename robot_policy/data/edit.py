"""Dataset edits: merge, split, delete-episodes and recompute-stats.

Every input is checked before anything is written (incompatible features, bad episode
indices, corrupt files all fail with a message naming the problem), and no edit can leave a
half-edited dataset: merge, split and delete-episodes write a new folder that appears only when
complete (see `assemble.py`); recompute-stats changes only metadata, in place, through the same
staged commit the recorder uses (see `commit.py`), under the writer lock.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import stats as stats_lib
from .assemble import EpisodeAssembler, new_dataset_dir
from .commit import DatasetLock, DatasetLockedError, Transaction, recover
from .layout import STATS_PATH, DatasetMismatchError, comparable_features, write_json
from .reader import LeRobotDataset
from .tables import episode_files, episodes_schema, read_episode_stats, read_parquet, write_parquet

log = logging.getLogger(__name__)

# Only these describe how a camera's packets can be decoded; a merge must agree on them.
_VIDEO_KEYS = ("video.codec", "video.pix_fmt", "video.height", "video.width")


def _open(root: str | Path) -> LeRobotDataset:
    # No frame cache: edits touch each frame at most once.
    return LeRobotDataset(root, frame_cache_size=0)


def _camera_stats(ds: LeRobotDataset) -> dict[int, dict[str, stats_lib.Stats]]:
    if not ds.camera_keys or not ds.num_episodes:
        return {e: {} for e in range(ds.num_episodes)}
    return read_episode_stats(episode_files(ds.root), ds.camera_keys)


def _copy(sources: list[tuple[LeRobotDataset, list[int]]], out: Path) -> dict[str, Any]:
    """Assemble the listed episodes of each source, in order, into a new dataset at `out`."""
    asm = EpisodeAssembler(out, sources[0][0])
    for ds, episodes in sources:
        camera_stats = _camera_stats(ds)
        for episode in episodes:
            asm.add(ds, episode, camera_stats[episode])
    info = asm.finish()
    return {"episodes": info["total_episodes"], "frames": info["total_frames"]}


# ---- merge ------------------------------------------------------------------------------------


def merge(sources: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Concatenate whole datasets (episodes in the order given) into a new dataset at `out`."""
    if len(sources) < 2:
        raise ValueError(f"merge needs at least two datasets, got {len(sources)}")
    datasets = [_open(root) for root in sources]
    check_mergeable(datasets)
    with new_dataset_dir(out) as staging:
        result = _copy([(ds, list(range(ds.num_episodes))) for ds in datasets], staging)
    return {"out": str(out), "sources": [str(s) for s in sources], **result}


def check_mergeable(datasets: Sequence[LeRobotDataset]) -> None:
    """Raise DatasetMismatchError listing every way the datasets disagree with the first."""
    first = datasets[0]
    problems = []
    for ds in datasets[1:]:
        where = f"{ds.root} vs {first.root}"
        if ds.fps != first.fps:
            problems.append(f"{where}: fps {ds.fps} vs {first.fps}")
        have, want = comparable_features(ds.features), comparable_features(first.features)
        for key in sorted(set(have) | set(want)):
            if have.get(key) != want.get(key):
                problems.append(f"{where}: feature {key!r} is {have.get(key)} vs {want.get(key)}")
        robots = {ds.info.get("robot_type"), first.info.get("robot_type")} - {None}
        if len(robots) > 1:
            problems.append(f"{where}: robot_type {sorted(robots)}")
        for key in set(ds.camera_keys) & set(first.camera_keys):
            mine, theirs = ds.features[key].get("info", {}), first.features[key].get("info", {})
            for name in _VIDEO_KEYS:
                if mine.get(name) != theirs.get(name):
                    problems.append(
                        f"{where}: {key} {name} {mine.get(name)!r} vs {theirs.get(name)!r}"
                    )
    if problems:
        raise DatasetMismatchError("cannot merge: " + "; ".join(problems))


# ---- delete and split -------------------------------------------------------------------------


def parse_episodes(text: str) -> list[int]:
    """'0,3,5-7' -> [0, 3, 5, 6, 7] (ranges inclusive, as LeRobot's CLI writes them)."""
    episodes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"bad episode list {text!r}: {part!r} is not N or N-M")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise ValueError(f"bad episode range {part!r}: end before start")
        episodes += range(low, high + 1)
    return episodes


def _check_indices(episodes: Sequence[int], total: int, what: str) -> None:
    bad = sorted({e for e in episodes if not 0 <= e < total})
    if bad:
        raise ValueError(f"{what}: episodes {bad} do not exist (the dataset has 0..{total - 1})")
    repeated = sorted(e for e, n in Counter(episodes).items() if n > 1)
    if repeated:
        raise ValueError(f"{what}: episodes {repeated} are listed more than once")


def delete_episodes(source: str | Path, episodes: Sequence[int], out: str | Path) -> dict:
    """A copy of `source` at `out` without `episodes`; the rest are renumbered in order."""
    ds = _open(source)
    _check_indices(episodes, ds.num_episodes, "delete-episodes")
    if not episodes:
        raise ValueError("delete-episodes: no episodes given")
    keep = [e for e in range(ds.num_episodes) if e not in set(episodes)]
    if not keep:
        raise ValueError(f"delete-episodes: deleting all {ds.num_episodes} episodes leaves nothing")
    with new_dataset_dir(out) as staging:
        result = _copy([(ds, keep)], staging)
    return {"out": str(out), "deleted": sorted(episodes), **result}


def split_fractions(fractions: dict[str, float], total: int) -> dict[str, list[int]]:
    """Consecutive episode ranges in the given proportions (fractions may sum to less than 1)."""
    if any(f <= 0 for f in fractions.values()) or sum(fractions.values()) > 1 + 1e-9:
        raise ValueError(f"split fractions must be positive and sum to at most 1, got {fractions}")
    parts, start, cumulative = {}, 0, 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        end = min(total, round(cumulative * total))
        if end <= start:
            raise ValueError(
                f"split part {name!r} ({fraction:g} of {total} episodes) would get no episode"
            )
        parts[name] = list(range(start, end))
        start = end
    return parts


def split(source: str | Path, out: str | Path, parts: dict[str, list[int]]) -> dict[str, Any]:
    """One new dataset per part, at `out/<name>`; all appear together or none does."""
    ds = _open(source)
    if not parts:
        raise ValueError("split: no parts given")
    for name, episodes in parts.items():
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise ValueError(f"split part name {name!r} must be a plain folder name")
        if not episodes:
            raise ValueError(f"split part {name!r} has no episodes")
        _check_indices(episodes, ds.num_episodes, f"split part {name!r}")
    listed = Counter(e for episodes in parts.values() for e in episodes)
    shared = sorted(e for e, n in listed.items() if n > 1)
    if shared:
        raise ValueError(f"split: episodes {shared} are in more than one part")
    results = {}
    with new_dataset_dir(out) as staging:
        for name, episodes in parts.items():
            results[name] = _copy([(ds, episodes)], staging / name)
    return {"out": str(out), "parts": results}


# ---- recompute stats --------------------------------------------------------------------------


def recompute_stats(root: str | Path, *, batch: int = 64) -> dict[str, Any]:
    """Recompute every episode's stats and stats.json from the stored frames, in place.

    Cameras are decoded in full (stats of the pixels as stored, not of a sample), so this is
    the slow edit. It repairs a missing or corrupt stats.json or episode stats, and replaces
    stats another tool computed differently (LeRobot samples frames; here every stat, the
    quantiles LeRobot's QUANTILES normalization reads included, is exact per episode).
    """
    root = Path(root)
    lock = DatasetLock(root)
    if not lock.acquire():
        raise DatasetLockedError(f"{root} is open in a DatasetWriter; close it first")
    try:
        done = recover(root)
        if done:
            log.warning("dataset %s: %s", root, done)
        ds = LeRobotDataset(root, frame_cache_size=0, read_stats=False)
        if not ds.num_episodes:
            raise ValueError(f"{root} has no episodes; nothing to compute")
        per_episode = [_episode_stats(ds, e, batch) for e in range(ds.num_episodes)]
        txn = Transaction(root)
        try:
            files = episode_files(root)
            for path in files:
                _stage_episode_table(txn, root, path, ds.features, per_episode)
            combined = stats_lib.combine_datasets(per_episode)
            write_json(txn.path(STATS_PATH), stats_lib.to_json(combined))
        except BaseException:
            txn.abort()
            raise
        txn.commit()
    finally:
        lock.release()
    return {"dataset": str(root), "episodes": ds.num_episodes, "frames": ds.num_frames}


def _episode_stats(ds: LeRobotDataset, episode: int, batch: int) -> dict[str, stats_lib.Stats]:
    start, end = ds.episode_bounds(episode)
    out = {}
    for key in ds.features:
        if key in ds.camera_keys:
            acc = stats_lib.ImageStatsAccumulator()
            for low in range(start, end, batch):
                for image in ds.frames(key, np.arange(low, min(low + batch, end))):
                    acc.add(image)
            out[key] = acc.result()
        else:
            out[key] = stats_lib.numeric_stats(ds.column(key)[start:end])
    return out


def _stage_episode_table(
    txn: Transaction,
    root: Path,
    path: Path,
    features: dict[str, dict[str, Any]],
    per_episode: list[dict[str, stats_lib.Stats]],
) -> None:
    """Rewrite one episode table with new stats columns; other columns are kept as they are."""
    old = read_parquet(path)
    schema = episodes_schema(features)
    rows = old.select([n for n in schema.names if not n.startswith("stats/")]).to_pylist()
    for row in rows:
        for key, ft_stats in per_episode[row["episode_index"]].items():
            for name, value in ft_stats.items():
                row[f"stats/{key}/{name}"] = value.tolist()
    table = pa.Table.from_pylist(rows, schema=schema)
    # Columns another writer added (LeRobot's extra episode metadata) stay; old stats go.
    for name in old.column_names:
        if name not in schema.names and not name.startswith("stats/"):
            table = table.append_column(old.schema.field(name), old.column(name))
    write_parquet(table, txn.path(path.relative_to(root).as_posix()))
