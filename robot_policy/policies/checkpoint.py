"""Checkpoint folders: config.json (policy config + provenance) beside model.safetensors.

Loading rebuilds the network from config.json and then demands that every tensor in the file
matches it exactly, so a truncated, corrupt or mismatched checkpoint fails loudly with the
reason instead of driving a robot with half-initialized weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robot_policy import __version__
from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.config import PolicyConfig
from robot_policy.policies.factory import make_policy

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded; the message names the file and the problem."""


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_policy(
    policy: ChunkPolicy, folder: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write (or overwrite) a checkpoint; each file is replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "robot_policy_version": __version__,
        "policy": policy.config.to_dict(),
        "metadata": metadata or {},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    _write_atomically(folder / WEIGHTS_FILE, lambda p: save_file(tensors, str(p)))
    _write_atomically(
        folder / CONFIG_FILE, lambda p: p.write_text(json.dumps(document, indent=2) + "\n")
    )
    return folder


def read_checkpoint_config(folder: str | Path) -> tuple[PolicyConfig, dict[str, Any]]:
    """The policy config and the metadata recorded at training time."""
    path = Path(folder) / CONFIG_FILE
    if not Path(folder).is_dir():
        raise CheckpointError(f"no checkpoint folder at {folder}")
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"{path} is missing") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("policy"), dict):
        raise CheckpointError(f"{path} has no 'policy' section")
    try:
        config = PolicyConfig.from_dict(document["policy"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from err
    return config, document.get("metadata", {})


def load_policy(folder: str | Path, device: str | torch.device = "cpu") -> ChunkPolicy:
    config, _ = read_checkpoint_config(folder)
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file: {err}") from err
    policy = make_policy(config)
    expected = policy.state_dict()
    problems = [f"missing {k}" for k in expected if k not in tensors]
    problems += [f"unexpected {k}" for k in tensors if k not in expected]
    problems += [
        f"{k} has shape {tuple(tensors[k].shape)}, config.json implies {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(f"{path} does not match {CONFIG_FILE}: {shown}")
    non_finite = [
        k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if non_finite:
        raise CheckpointError(f"{path} holds non-finite values in {', '.join(non_finite[:5])}")
    policy.load_state_dict(tensors)
    return policy.to(device).eval()
