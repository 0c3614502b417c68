"""Checkpoints that ship inside the package, each produced by the project's own `collect` and
`train` commands (the README beside each records exactly how, and what it scored)."""

from pathlib import Path

DEFAULT = "push_flow"
IMAGE = "push_image_flow"  # sees the front camera and its own joints, no simulator state


def pretrained_path(name: str = DEFAULT) -> Path:
    path = Path(__file__).parent / name
    if not (path / "config.json").is_file():
        available = sorted(
            p.name for p in Path(__file__).parent.iterdir() if (p / "config.json").is_file()
        )
        raise FileNotFoundError(f"no shipped checkpoint {name!r}; available: {available}")
    return path
