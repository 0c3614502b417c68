"""Crash-safe commits of several dataset files at once, and the writer lock.

Saving an episode changes several files (data parquet, videos, episode table, tasks, stats,
info.json). A SIGKILL between two of those writes must not leave a dataset whose files disagree,
so every changed file is first written in full under `root/.pending/<same relative path>`. Then:

1. every staged file and its folder is fsynced;
2. the marker `.pending/COMMIT` is created atomically (write + fsync + rename) - the commit point;
3. each staged file is `os.replace`d over its destination, meta/info.json last;
4. the marker and `.pending` are removed.

Whoever opens the dataset next calls `recover`: a `.pending` with a marker is rolled forward
(step 3 is idempotent: files already moved are simply no longer staged), one without a marker is
an unfinished save and is deleted, leaving the dataset exactly as the last commit left it.

Replacement order makes concurrent readers safe too: data and video files only ever grow or roll
to new files and are replaced before the metadata that points into them, and readers trust
info.json's totals, so a reader never sees an episode whose bytes are not in place yet.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from .layout import INFO_PATH, LOCK_FILE, PENDING_DIR, RECORDING_DIR, STATS_PATH, TASKS_PATH

MARKER = "COMMIT"


class DatasetLockedError(RuntimeError):
    """Another live process holds the dataset open for writing."""


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` (before it is renamed into place)."""
    for path in sorted(root.rglob("*"), reverse=True):
        _fsync_path(path)
    _fsync_path(root)


_META_LAST = (TASKS_PATH, STATS_PATH, INFO_PATH)


def _apply_order(rel: str) -> tuple[int, str]:
    """Bulk files first, then the episode table, then tasks, stats and info.json (the totals)."""
    if rel in _META_LAST:
        return 2 + _META_LAST.index(rel), rel
    return (1 if rel.startswith("meta/") else 0), rel


def _staged_files(pending: Path) -> list[str]:
    rels = [
        p.relative_to(pending).as_posix()
        for p in pending.rglob("*")
        if p.is_file() and p.name != MARKER and p.name != MARKER + ".tmp"
    ]
    return sorted(rels, key=_apply_order)


def _roll_forward(root: Path) -> None:
    pending = root / PENDING_DIR
    touched_dirs: set[Path] = set()
    for rel in _staged_files(pending):
        touched_dirs.add(_install(pending / rel, root / rel))
    for folder in touched_dirs:
        _fsync_path(folder)
    (pending / MARKER).unlink()
    shutil.rmtree(pending)
    _fsync_path(root)


def _install(staged: Path, dest: Path) -> Path:
    """Move one staged file over its destination; returns the folder to fsync."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
    return dest.parent


def recover(root: Path) -> str | None:
    """Finish or undo an interrupted commit and drop an interrupted recording.

    Call only while holding the dataset lock. Returns what was done, for logging.
    """
    pending = root / PENDING_DIR
    action = None
    if pending.exists():
        if (pending / MARKER).exists():
            _roll_forward(root)
            action = "rolled forward an interrupted save"
        else:
            shutil.rmtree(pending)
            action = "discarded an unfinished save"
    recording = root / RECORDING_DIR
    if recording.exists():
        shutil.rmtree(recording)
        action = (action + "; " if action else "") + "removed an interrupted recording"
    return action


class Transaction:
    """Stage files under `.pending`, then make them all visible at once with `commit()`."""

    def __init__(self, root: Path):
        self.root = root
        self.pending = root / PENDING_DIR
        try:
            self.pending.mkdir()
        except FileExistsError:
            # Left by a commit that failed in this process; it may already be past its commit
            # point, so only `recover` (run when the dataset is next opened) may touch it.
            raise RuntimeError(
                f"an earlier save in {root} did not finish; close and reopen the dataset"
            ) from None

    def path(self, rel: str) -> Path:
        """Where to write the new content of `root/rel`."""
        staged = self.pending / rel
        staged.parent.mkdir(parents=True, exist_ok=True)
        return staged

    def commit(self) -> None:
        folders = {self.pending}
        for rel in _staged_files(self.pending):
            staged = self.pending / rel
            _fsync_path(staged)
            folders.add(staged.parent)
        for folder in folders:
            _fsync_path(folder)
        _write_marker(self.pending)
        _roll_forward(self.root)

    def abort(self) -> None:
        shutil.rmtree(self.pending, ignore_errors=True)


def _write_marker(pending: Path) -> None:
    tmp = pending / (MARKER + ".tmp")
    with open(tmp, "w") as f:
        f.write("staged files below are complete\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, pending / MARKER)
    _fsync_path(pending)


class DatasetLock:
    """An advisory `flock` on `root/.lock`: one writer at a time; the kernel drops it on death."""

    def __init__(self, root: Path):
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def recover_if_idle(root: Path) -> str | None:
    """Reader-side recovery: only when no writer holds the dataset (it would recover itself)."""
    if not (root / PENDING_DIR).exists() and not (root / RECORDING_DIR).exists():
        return None
    lock = DatasetLock(root)
    try:
        if not lock.acquire():
            return None
    except OSError:  # read-only copy of a dataset: leave it as it is
        return None
    try:
        return recover(root)
    finally:
        lock.release()
