"""Choosing the torch device: one rule for training, evaluation and (later) the policy node."""

import torch


def select_device(name: str = "auto") -> torch.device:
    """ "auto" takes CUDA when present, else the CPU; asking for CUDA without one is an error
    rather than a silent fall-back, so a benchmark never reports CPU figures as GPU ones."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but torch sees no CUDA device here")
    return device
