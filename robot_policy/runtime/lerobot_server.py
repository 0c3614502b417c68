"""A LeRobot policy's action chunks for robot_policy, computed in LeRobot's own environment.

LeRobot 0.6 needs Python >= 3.12 and torch < 2.12; robot_policy runs on Python 3.11 with torch
2.13, so a LeRobot policy cannot load in policy_node's process. `lerobot_worker.LeRobotChild`
starts this file, by path, with LeRobot's interpreter (`make lerobot-env`); it connects back over
a Unix socket and answers one observation history at a time with the policy's chunk, through
the policy's own pre- and post-processors (LeRobot's normalization, as `lerobot-eval` runs it).
It imports nothing of robot_policy but `child.py` (standard library only), loaded by path, for
the request loop that every inference child shares.

Requests are `(observations, stamp, hints)` as `ProcessInference` sends them: each key a history
of `n_obs_steps` frames, numeric (T, D) float32, cameras (T, H, W, 3) uint8. Replies are
`(actions (n, A) float32, seconds)`, `actions[0]` the action for the newest observation.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

AUTHKEY_ENV = "ROBOT_POLICY_AUTHKEY"


def _child_module() -> Any:
    spec = importlib.util.spec_from_file_location("_rp_child", Path(__file__).with_name("child.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup(checkpoint: str, device: str, threads: int) -> tuple[dict, Any]:
    """Load the policy and its processors; ready with what the parent must know of it."""
    import numpy as np
    import torch
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    torch.set_num_threads(threads)
    cfg = PreTrainedConfig.from_pretrained(checkpoint)
    cfg.device = device
    policy = get_policy_class(cfg.type).from_pretrained(checkpoint, config=cfg)
    policy.eval()
    pre, post = make_pre_post_processors(
        cfg, pretrained_path=checkpoint,
        preprocessor_overrides={"device_processor": {"device": device}},
    )  # fmt: skip
    features = {key: tuple(ft.shape) for key, ft in cfg.input_features.items()}
    cameras = set(cfg.image_features)
    history = cfg.n_obs_steps > 1  # LeRobot takes (B, T, ...) then, else (B, ...)

    def to_batch(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        batch = {}
        for key, shape in features.items():
            if key not in obs:
                raise KeyError(f"the policy needs {key!r}; the observation has {sorted(obs)}")
            value = torch.from_numpy(np.ascontiguousarray(obs[key]))
            if key in cameras:  # (T, H, W, 3) uint8 -> (T, 3, H, W) in [0, 1]
                value = value.permute(0, 3, 1, 2).float() / 255.0
            else:
                value = value.float()
            if tuple(value.shape[1:]) != shape:
                raise ValueError(f"{key}: the policy takes {shape}, got {tuple(value.shape[1:])}")
            batch[key] = value[None] if history else value[-1:]
        return batch

    def infer(request: tuple) -> tuple[np.ndarray, float]:
        obs, _stamp, _hints = request
        start = time.perf_counter()
        with torch.inference_mode():
            chunk = post(policy.predict_action_chunk(pre(to_batch(obs))))
        actions = chunk[0].float().cpu().numpy()
        return actions, time.perf_counter() - start

    blank = {
        key: np.zeros((cfg.n_obs_steps, shape[1], shape[2], 3), np.uint8)
        if key in cameras
        else np.zeros((cfg.n_obs_steps, *shape), np.float32)
        for key, shape in features.items()
    }
    actions, _ = infer((blank, 0.0, None))  # warm up, and learn the chunk's shape
    return {"chunk_len": int(actions.shape[0]), "action_dim": int(actions.shape[1])}, infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a LeRobot pretrained_model folder")
    parser.add_argument("--address", required=True, help="the parent's Unix socket")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    conn = Client(args.address, family="AF_UNIX", authkey=bytes.fromhex(os.environ[AUTHKEY_ENV]))
    try:
        _child_module().serve(conn, setup, (args.checkpoint, args.device, args.threads))
    finally:
        conn.close()


if __name__ == "__main__":
    main()
