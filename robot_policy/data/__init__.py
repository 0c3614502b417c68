"""Episode datasets in LeRobot's v3.0 layout: recording, reading, training windows, stats.

`DatasetWriter` records episodes with one crash-safe commit per episode; `LeRobotDataset` reads
a dataset folder (written here or by LeRobot) into numpy; `WindowDataset` serves observation
stacks and action chunks for training; `describe` summarizes a folder for the CLI.
The dataset tools live in their own modules, imported on use: `edit` (merge, split,
delete-episodes, recompute-stats, on top of `assemble`), `viz` (episode plots) and
`mcap_import` (rosbag2 MCAP recordings, read by `mcap_read`, mapped by `mcap_config`).
"""

from .commit import DatasetLockedError
from .layout import DatasetFormatError, DatasetMismatchError
from .reader import LeRobotDataset
from .summary import describe
from .windows import WindowDataset
from .writer import DatasetWriter

__all__ = [
    "DatasetFormatError",
    "DatasetLockedError",
    "DatasetMismatchError",
    "DatasetWriter",
    "LeRobotDataset",
    "WindowDataset",
    "describe",
]
