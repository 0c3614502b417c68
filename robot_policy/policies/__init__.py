"""Action-chunk generative policies: diffusion and flow matching over a shared 1D U-Net."""

from robot_policy.policies.checkpoint import (
    CheckpointError,
    load_policy,
    read_checkpoint_config,
    save_policy,
)
from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.config import DiffusionConfig, FlowConfig, PolicyConfig
from robot_policy.policies.diffusion import DiffusionPolicy
from robot_policy.policies.factory import POLICY_TYPES, make_policy
from robot_policy.policies.flow import FlowPolicy

__all__ = [
    "POLICY_TYPES",
    "CheckpointError",
    "ChunkPolicy",
    "DiffusionConfig",
    "DiffusionPolicy",
    "FlowConfig",
    "FlowPolicy",
    "PolicyConfig",
    "load_policy",
    "make_policy",
    "read_checkpoint_config",
    "save_policy",
]
