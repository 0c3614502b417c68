"""Training an action-chunk policy on a LeRobot v3 dataset.

One loop for both policy types, single process or DistributedDataParallel under torchrun
(gloo on CPU, nccl on GPU). The checkpoint folder holds the EMA weights (what gets deployed)
and, beside them, `training_state.pt` with everything needed to resume bit-for-bit where an
interrupted run stopped.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from robot_policy.data import LeRobotDataset, WindowDataset
from robot_policy.policies.checkpoint import save_policy
from robot_policy.policies.config import CONFIG_TYPES, PolicyConfig
from robot_policy.policies.device import select_device
from robot_policy.policies.factory import make_policy
from robot_policy.policies.inference import native_bf16

TRAINING_STATE_FILE = "training_state.pt"
STATE_FEATURES = ("observation.state", "observation.environment_state")


@dataclass
class TrainSettings:
    dataset: str
    policy: str
    out: str
    steps: int = 5000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 500
    ema_power: float = 0.75
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    num_workers: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: bool = False  # also OUT/checkpoints/<step>/: pick one by evaluation
    resume: bool = False
    cameras: tuple[str, ...] = ()
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    # "bf16": forward passes under bfloat16 autocast (weights, gradients and optimizer state
    # stay fp32); "auto": bf16 where the CPU computes it natively (or on CUDA), else fp32.
    precision: str = "fp32"
    # Decoded camera frames kept in memory per data process (MiB): a dataset that fits is
    # decoded once, not once per epoch (0 keeps only the reader's default LRU).
    frame_cache_mb: int = 4096


def policy_config_for(dataset: LeRobotDataset, settings: TrainSettings) -> PolicyConfig:
    """Derive the network's input/output shapes from the dataset's features.

    Image policies see the robot's own state and the cameras but not the privileged
    `observation.environment_state`, which a real robot does not have. Where a (simulated)
    dataset holds it, an image policy learns to predict it from its camera features as an
    auxiliary training loss (`--set aux_keys=[]` turns that off).
    """
    features = dataset.features
    camera_keys = tuple(f"observation.images.{name}" for name in settings.cameras)
    missing = [k for k in camera_keys if k not in features]
    if missing:
        raise ValueError(f"dataset has no camera feature {', '.join(missing)}")
    wanted = ("observation.state",) if camera_keys else STATE_FEATURES
    state_keys = tuple(k for k in wanted if k in features)
    kwargs: dict[str, Any] = dict(
        action_dim=int(features["action"]["shape"][0]),
        state_keys=state_keys,
        state_dims=tuple(int(features[k]["shape"][0]) for k in state_keys),
        camera_keys=camera_keys,
        fps=float(dataset.fps),
    )
    if camera_keys:
        height, width = features[camera_keys[0]]["shape"][:2]
        kwargs["image_size"] = (int(height), int(width))
    overrides = dict(settings.policy_overrides)
    default_aux = [k for k in STATE_FEATURES if k not in state_keys and k in features]
    aux_keys = tuple(overrides.pop("aux_keys", default_aux if camera_keys else ()))
    unknown = [k for k in aux_keys if k not in features]
    if unknown:
        raise ValueError(f"aux_keys {unknown} are not features of the dataset")
    kwargs["aux_keys"] = aux_keys
    kwargs["aux_dims"] = tuple(int(features[k]["shape"][0]) for k in aux_keys)
    if settings.policy not in CONFIG_TYPES:
        raise ValueError(
            f"unknown policy {settings.policy!r}; expected one of {sorted(CONFIG_TYPES)}"
        )
    return CONFIG_TYPES[settings.policy](**{**kwargs, **overrides})


def _distributed() -> tuple[int, int]:
    """(rank, world size), initializing the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(settings: TrainSettings, progress: bool = True) -> dict[str, Any] | None:
    if settings.frame_cache_mb < 0:
        raise ValueError(f"frame_cache_mb must be >= 0, got {settings.frame_cache_mb}")
    rank, world = _distributed()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = select_device(settings.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(settings.seed + rank)
    out = Path(settings.out)
    state_path = out / TRAINING_STATE_FILE

    bf16 = _bf16(settings.precision, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    dataset = LeRobotDataset(settings.dataset)
    config = policy_config_for(dataset, settings)
    if settings.frame_cache_mb:
        dataset.resize_frame_cache(_frame_cache_frames(dataset, config, settings))
    windows = WindowDataset(dataset, n_obs_steps=config.n_obs_steps, horizon=config.horizon)
    policy = make_policy(config)
    policy.normalizer.set_stats(dataset.stats)
    policy.to(device).train()

    optimizer = torch.optim.AdamW(
        policy.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, settings.warmup_steps, settings.steps)
    ema = EMAModel(policy.parameters(), decay=0.9999, use_ema_warmup=True, power=settings.ema_power)
    start_step = 0
    if settings.resume:
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: no {TRAINING_STATE_FILE} in {out}")
        state = torch.load(state_path, map_location=device, weights_only=False)
        if state["config"] != config.to_dict():
            raise ValueError(f"--resume: {state_path} was trained with a different policy config")
        policy.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        start_step = state["step"]
        torch.set_rng_state(state["rng"])

    model = DistributedDataParallel(policy) if world > 1 else policy
    sampler = (
        DistributedSampler(windows, num_replicas=world, rank=rank, seed=settings.seed)
        if world > 1
        else RandomSampler(windows, generator=torch.Generator().manual_seed(settings.seed))
    )
    loader = DataLoader(
        windows,
        batch_size=settings.batch_size,
        sampler=sampler,
        drop_last=len(windows) >= settings.batch_size * world,
        num_workers=settings.num_workers,
        persistent_workers=settings.num_workers > 0,
    )

    def save(step: int) -> None:
        if rank != 0:
            return
        ema.store(policy.parameters())
        ema.copy_to(policy.parameters())
        meta = {"dataset": str(settings.dataset), "step": step, "settings": asdict(settings)}
        save_policy(policy, out, metadata=meta)
        if settings.keep_checkpoints:
            save_policy(policy, out / "checkpoints" / f"{step:06d}", metadata=meta)
        ema.restore(policy.parameters())
        tmp = state_path.with_name(f".{state_path.name}.tmp")
        torch.save(
            {
                "step": step,
                "config": config.to_dict(),
                "model": policy.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": ema.state_dict(),
                "rng": torch.get_rng_state(),
            },
            tmp,
        )
        os.replace(tmp, state_path)

    losses: list[float] = []
    step = start_step
    epoch = start_step // max(1, len(loader))
    started = time.perf_counter()
    bar = tqdm(
        total=settings.steps,
        initial=start_step,
        desc=f"train {config.type}",
        disable=not progress or rank != 0,
    )
    while step < settings.steps:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast:
                loss = model(batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {step}; last checkpoint kept"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.step(policy.parameters())
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                save(step)
            if step >= settings.steps:
                break
        epoch += 1
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:
        return None  # one report per run, from rank 0
    window = max(1, min(100, len(losses) // 10))
    return {
        "checkpoint": str(out),
        "policy": config.type,
        "steps": step,
        "first_loss": sum(losses[:window]) / window if losses else None,
        "final_loss": sum(losses[-window:]) / window if losses else None,
        "seconds": time.perf_counter() - started,
        "world_size": world,
        "precision": "bf16" if bf16 else "fp32",
    }


def _frame_cache_frames(
    dataset: LeRobotDataset, config: PolicyConfig, settings: TrainSettings
) -> int:
    """Frames the cache holds: every frame of the cameras the policy reads, or as many as
    `frame_cache_mb` holds in each data process (the main one, or each worker)."""
    if not config.camera_keys:
        return 0
    frame_bytes = max(math.prod(dataset.features[k]["shape"]) for k in config.camera_keys)
    budget = settings.frame_cache_mb * 2**20 // max(1, settings.num_workers)
    return min(len(dataset) * len(config.camera_keys), budget // frame_bytes)


def _bf16(precision: str, device: torch.device) -> bool:
    """Whether the forward runs under bfloat16 autocast. On a CPU without native bfloat16 it
    is emulated and slower than fp32, so "auto" leaves it off there."""
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision must be fp32, bf16 or auto, got {precision!r}")
    native = device.type == "cuda" or native_bf16()
    return precision == "bf16" or (precision == "auto" and native)
