"""Policy type name -> class: the one place a new policy type is registered."""

from robot_policy.policies.chunk_policy import ChunkPolicy
from robot_policy.policies.config import PolicyConfig
from robot_policy.policies.diffusion import DiffusionPolicy
from robot_policy.policies.flow import FlowPolicy

POLICY_TYPES: dict[str, type[ChunkPolicy]] = {"diffusion": DiffusionPolicy, "flow": FlowPolicy}


def make_policy(config: PolicyConfig) -> ChunkPolicy:
    return POLICY_TYPES[config.type](config)
