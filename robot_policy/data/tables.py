"""The parquet tables of a v3.0 dataset: frames (data/), episodes (meta/episodes/), tasks.

Types follow what LeRobot writes through Hugging Face `datasets`: a numeric feature of shape
(D,) is a `fixed_size_list<dtype>[D]` column, shape (1,) a plain scalar column; the schema carries
the `huggingface` metadata the Hub viewer reads. The tasks table carries pandas metadata so that
`pandas.read_parquet` gives LeRobot its DataFrame indexed by task string.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .layout import (
    EPISODES_PATH,
    INFO_PATH,
    DatasetFormatError,
    camera_keys,
    chunk_file_path,
    is_camera,
)
from .stats import BASIC_STAT_NAMES, QUANTILE_NAMES, STAT_NAMES, Stats


def _value_type(dtype: str) -> pa.DataType:
    return pa.from_numpy_dtype(np.dtype(dtype))


def _is_scalar(feature: dict[str, Any]) -> bool:
    return list(feature["shape"]) == [1]


def frame_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    fields, hf_features = [], {}
    for key, ft in features.items():
        if is_camera(ft):
            continue
        value = {"dtype": ft["dtype"], "_type": "Value"}
        if _is_scalar(ft):
            fields.append(pa.field(key, _value_type(ft["dtype"])))
            hf_features[key] = value
        else:
            length = int(ft["shape"][0])
            fields.append(pa.field(key, pa.list_(_value_type(ft["dtype"]), length)))
            hf_features[key] = {"feature": value, "length": length, "_type": "Sequence"}
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features}})}
    return pa.schema(fields, metadata=metadata)


def frame_table(features: dict[str, dict[str, Any]], columns: dict[str, np.ndarray]) -> pa.Table:
    """One episode's rows; `columns[key]` has shape (T,) or (T, D)."""
    schema = frame_schema(features)
    arrays = []
    for field in schema:
        values = np.asarray(columns[field.name])
        if pa.types.is_fixed_size_list(field.type):
            flat = pa.array(values.reshape(-1), type=field.type.value_type)
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        else:
            arrays.append(pa.array(values.reshape(-1), type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def column_to_numpy(column: pa.ChunkedArray | pa.Array, feature: dict[str, Any]) -> np.ndarray:
    """(T,) for scalar columns, (T, D) for list columns (fixed or variable size)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        flat = pc.list_flatten(array).to_numpy(zero_copy_only=False)
        return flat.reshape(len(array), int(feature["shape"][0])).astype(feature["dtype"])
    return array.to_numpy(zero_copy_only=False).astype(feature["dtype"])


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise DatasetFormatError(f"missing dataset file: {path}") from None
    except (OSError, pa.ArrowException) as err:
        raise DatasetFormatError(f"corrupt dataset file {path}: {err}") from err


def write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


# ---- tasks ------------------------------------------------------------------------------------

_TASKS_PANDAS_METADATA = {
    "index_columns": ["task"],
    "column_indexes": [
        {
            "name": None,
            "field_name": None,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": {"encoding": "UTF-8"},
        }
    ],
    "columns": [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ],
    "creator": {"library": "pyarrow", "version": pa.__version__},
    "pandas_version": "2.2.3",
}


def tasks_table(tasks: list[str]) -> pa.Table:
    """Task strings by task_index, laid out as pandas writes LeRobot's task DataFrame."""
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={"pandas": json.dumps(_TASKS_PANDAS_METADATA)},
    )
    return pa.table({"task_index": list(range(len(tasks))), "task": tasks}, schema=schema)


def read_tasks(path: Path) -> list[str]:
    table = read_parquet(path)
    name_column = next((n for n in ("task", "__index_level_0__") if n in table.column_names), None)
    if name_column is None or "task_index" not in table.column_names:
        raise DatasetFormatError(f"corrupt dataset file {path}: needs 'task' and 'task_index'")
    names = table.column(name_column).to_pylist()
    order = table.column("task_index").to_pylist()
    if sorted(order) != list(range(len(order))):
        raise DatasetFormatError(f"corrupt dataset file {path}: task_index is not 0..N-1")
    tasks = [""] * len(order)
    for idx, name in zip(order, names, strict=True):
        tasks[idx] = name
    return tasks


# ---- episodes ---------------------------------------------------------------------------------

EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


def episodes_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    i64, f64 = pa.int64(), pa.float64()
    fields = [
        pa.field("episode_index", i64),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", i64),
        pa.field("data/chunk_index", i64),
        pa.field("data/file_index", i64),
        pa.field("dataset_from_index", i64),
        pa.field("dataset_to_index", i64),
    ]
    for key in camera_keys(features):
        fields += [
            pa.field(f"videos/{key}/chunk_index", i64),
            pa.field(f"videos/{key}/file_index", i64),
            pa.field(f"videos/{key}/from_timestamp", f64),
            pa.field(f"videos/{key}/to_timestamp", f64),
        ]
    for key, ft in features.items():
        vector = pa.list_(pa.list_(pa.list_(f64))) if is_camera(ft) else pa.list_(f64)
        for name in STAT_NAMES:
            kind = pa.list_(i64) if name == "count" else vector
            fields.append(pa.field(f"stats/{key}/{name}", kind))
    fields += [
        pa.field("meta/episodes/chunk_index", i64),
        pa.field("meta/episodes/file_index", i64),
    ]
    return pa.schema(fields)


def episode_table(
    features: dict[str, dict[str, Any]], row: dict[str, Any], stats: dict[str, Stats]
) -> pa.Table:
    """One episodes-table row: `row` holds the non-stats columns, `stats` the episode's stats."""
    return episodes_table(features, [row], [stats])


def episodes_table(
    features: dict[str, dict[str, Any]], rows: list[dict[str, Any]], stats: list[dict[str, Stats]]
) -> pa.Table:
    """Many episodes-table rows at once (`rows[i]` and `stats[i]` describe one episode)."""
    full_rows = []
    for row, ep_stats in zip(rows, stats, strict=True):
        full = dict(row)
        for key, ft_stats in ep_stats.items():
            for name in STAT_NAMES:
                value = ft_stats.get(name)  # quantiles carried over from older stats: none
                full[f"stats/{key}/{name}"] = None if value is None else value.tolist()
        full_rows.append(full)
    return pa.Table.from_pylist(full_rows, schema=episodes_schema(features))


def append_episode_rows(base: pa.Table, rows: pa.Table) -> pa.Table:
    """`base` then `rows`, in `base`'s layout: an episode table another tool wrote (LeRobot's,
    with columns this version does not know) keeps every column it has, our rows leave the
    unknown ones empty, and columns only our rows have are left out of that file, so every row
    of one file has the same columns, as LeRobot's loader requires."""
    columns = [
        rows.column(field.name).cast(field.type)
        if field.name in rows.column_names
        else pa.nulls(rows.num_rows, field.type)
        for field in base.schema
    ]
    return pa.concat_tables([base, pa.Table.from_arrays(columns, schema=base.schema)])


def episode_files(root: Path) -> list[Path]:
    """The episode tables in order; a dataset with episodes has at least one."""
    files = sorted((root / "meta/episodes").glob("*/*.parquet"))
    if not files:
        expected = root / chunk_file_path(EPISODES_PATH, 0, 0)
        raise DatasetFormatError(f"missing dataset file: {expected} (no episode table)")
    return files


def read_episodes(paths: list[Path], features: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-stats columns of every episode row, in episode order."""
    wanted = list(EPISODE_COLUMNS) + ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    for key in camera_keys(features):
        wanted += [f"videos/{key}/{name}" for name in VIDEO_COLUMNS]
    rows: list[dict[str, Any]] = []
    for path in paths:
        table = read_parquet(path)
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise DatasetFormatError(f"corrupt dataset file {path}: missing columns {missing}")
        rows += table.select(wanted).to_pylist()
    rows.sort(key=lambda r: r["episode_index"])
    return rows


def read_last_episode(
    root: Path, features: dict[str, dict[str, Any]], total: int
) -> dict[str, Any]:
    """The row of the last of the `total` episodes (what an append continues from), checked to
    be episode `total - 1`."""
    last_file = episode_files(root)[-1]
    rows = read_episodes([last_file], features)
    if not rows or rows[-1]["episode_index"] != total - 1:
        raise DatasetFormatError(
            f"{last_file}: last episode does not match total_episodes={total} in {root / INFO_PATH}"
        )
    return rows[-1]


_STAT_DTYPES = {name: np.int64 if name == "count" else np.float64 for name in STAT_NAMES}


def read_episode_stats(paths: list[Path], keys: list[str]) -> dict[int, dict[str, Stats]]:
    """Per-episode stats of `keys` from the episode tables, by episode_index.

    Camera stats cost a full decode to recompute, so edits that only move episodes carry them
    over from here; a table without them is reported (`dataset recompute-stats` rebuilds them).
    Quantiles are optional (tables written before they existed have none): absent or empty
    ones are left out of that episode's stats.
    """
    required = [f"stats/{key}/{name}" for key in keys for name in BASIC_STAT_NAMES]
    optional = [f"stats/{key}/{name}" for key in keys for name in QUANTILE_NAMES]
    out: dict[int, dict[str, Stats]] = {}
    for path in paths:
        table = read_parquet(path)
        missing = [c for c in ["episode_index", *required] if c not in table.column_names]
        if missing:
            raise DatasetFormatError(
                f"corrupt dataset file {path}: missing columns {missing} "
                "(`robot-policy dataset recompute-stats` rebuilds them)"
            )
        present = [c for c in optional if c in table.column_names]
        for row in table.select(["episode_index", *required, *present]).to_pylist():
            if any(row[column] is None for column in required):
                raise DatasetFormatError(
                    f"corrupt dataset file {path}: episode {row['episode_index']} has empty stats "
                    "(`robot-policy dataset recompute-stats` rebuilds them)"
                )
            episode: dict[str, Stats] = {}
            for key in keys:
                values = {name: row.get(f"stats/{key}/{name}") for name in STAT_NAMES}
                episode[key] = {
                    name: np.asarray(value, dtype=_STAT_DTYPES[name])
                    for name, value in values.items()
                    if value is not None
                }
            out[row["episode_index"]] = episode
    return out
