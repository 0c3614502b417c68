"""LeRobot pretrained policies (ACT, Diffusion, ... whatever `lerobot` loads) behind our loop.

The policy runs in LeRobot's own interpreter (`lerobot_server.py`, `make lerobot-env`): LeRobot
0.6 needs Python >= 3.12 and torch < 2.12, this project Python 3.11 and torch 2.13. What reaches
control_node is the same as from one of our policies, a timestamped chunk, so our chunk
scheduling and our safety filter apply unchanged. Observations map by LeRobot's feature names,
which our datasets and topics share: `observation.state` (arm joints + gripper, from
/joint_states), `observation.environment_state`, and `observation.images.<camera>` (the camera
topic of that name). A policy trained on other names needs its features renamed first.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

import robot_policy
from robot_policy.features import ENV_STATE_KEY, IMAGE_PREFIX, STATE_KEY
from robot_policy.policies.checkpoint import CheckpointError, read_checkpoint_config
from robot_policy.pretrained import pretrained_path
from robot_policy.runtime.child import ChildConnection, ChildError
from robot_policy.runtime.lerobot_server import AUTHKEY_ENV
from robot_policy.runtime.process_worker import ChildInference

PYTHON_ENV = "ROBOT_POLICY_LEROBOT_PYTHON"
SERVER = Path(__file__).with_name("lerobot_server.py")


def default_python() -> Path:
    """$ROBOT_POLICY_LEROBOT_PYTHON, else the checkout's .venv-lerobot (`make lerobot-env`)."""
    if os.environ.get(PYTHON_ENV):
        return Path(os.environ[PYTHON_ENV])
    return Path(robot_policy.__file__).resolve().parents[1] / ".venv-lerobot" / "bin" / "python"


@dataclass(frozen=True)
class LeRobotSpec:
    """A LeRobot policy folder, read with the names policy_node reads our checkpoints by."""

    path: Path
    policy_type: str
    fps: int
    state_keys: tuple[str, ...]
    state_dims: tuple[int, ...]
    camera_keys: tuple[str, ...]
    n_obs_steps: int
    n_action_steps: int
    action_dim: int


def read_lerobot_policy(folder: str | Path, fps: int = 0) -> LeRobotSpec:
    """The spec of a LeRobot `pretrained_model` folder (its config.json); clear errors, no torch.

    LeRobot's policy config has no rate: `fps` > 0 gives it, else it is the training dataset's
    (train_config.json's dataset root, meta/info.json), as `lerobot-train` left it.
    """
    path = Path(folder)
    try:
        cfg = json.loads((path / "config.json").read_text())
        inputs = cfg["input_features"]
        action_dim = int(cfg["output_features"]["action"]["shape"][0])
        policy_type, n_obs, n_act = cfg["type"], int(cfg["n_obs_steps"]), int(cfg["n_action_steps"])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{path}: not a LeRobot policy folder ({exc!r})") from exc
    state_keys, state_dims, cameras = [], [], []
    for key, ft in inputs.items():
        if ft.get("type") == "VISUAL" and key.startswith(IMAGE_PREFIX):
            cameras.append(key)
        elif ft.get("type") in ("STATE", "ENV") and key in (STATE_KEY, ENV_STATE_KEY):
            state_keys.append(key)
            state_dims.append(int(ft["shape"][0]))
        else:
            raise CheckpointError(
                f"{path}: no topic provides the LeRobot input {key!r} ({ft.get('type')}); "
                f"inputs map by name: {STATE_KEY}, {ENV_STATE_KEY}, {IMAGE_PREFIX}<camera>"
            )
    return LeRobotSpec(
        path, policy_type, fps or _training_fps(path), tuple(state_keys), tuple(state_dims),
        tuple(cameras), n_obs, n_act, action_dim,
    )  # fmt: skip


def policy_spec(checkpoint: str | Path | None, backend: str, fps: int = 0) -> Any:
    """What policy_node and the evaluation read of a policy, for either backend: its keys,
    dims, rate and chunk sizes (our `PolicyConfig`, or a `LeRobotSpec` with the same names)."""
    if backend == "lerobot":
        if not checkpoint:
            raise CheckpointError("backend lerobot needs a checkpoint (a LeRobot policy folder)")
        return read_lerobot_policy(checkpoint, fps)
    if backend != "robot_policy":
        raise ValueError(f"backend is robot_policy or lerobot, got {backend!r}")
    return read_checkpoint_config(checkpoint or pretrained_path())[0]


def _training_fps(path: Path) -> int:
    try:
        root = json.loads((path / "train_config.json").read_text())["dataset"]["root"]
        return int(json.loads((Path(root) / "meta/info.json").read_text())["fps"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: the policy's rate is not known (its training dataset's meta/info.json "
            f"is not readable: {exc!r}); give it (policy_node.fps)"
        ) from exc


class LeRobotChild(ChildConnection):
    """`lerobot_server.py` in LeRobot's interpreter, over a Unix socket only it can join."""

    def __init__(
        self,
        spec: LeRobotSpec,
        python: str | Path,
        *,
        device: str = "cpu",
        threads: int = 1,
        priority: int = 0,
        start_timeout: float = 300.0,
    ) -> None:
        super().__init__("lerobot-policy")
        self.spec = spec
        self.python = Path(python)
        self._args = ["--checkpoint", str(spec.path), "--device", device, "--threads", str(threads)]
        self.priority = priority
        self.start_timeout = start_timeout
        self.ready: dict[str, Any] = {}
        self._dir: Path | None = None
        self._process: subprocess.Popen | None = None

    def start(self) -> tuple[float, str | None]:
        """Start the server; (dt, why not realtime) once it has loaded and warmed the policy."""
        if not self.python.exists():
            raise ChildError(
                f"no LeRobot interpreter at {self.python}: run `make lerobot-env`, or give one "
                f"(policy_node.lerobot_python or ${PYTHON_ENV})"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="robot-policy-lerobot-"))
        address, authkey = str(self._dir / "socket"), secrets.token_bytes(32)
        try:
            with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
                with open(self._dir / "stderr.log", "wb") as log:
                    self._process = subprocess.Popen(
                        [str(self.python), str(SERVER), "--address", address, *self._args],
                        env={**os.environ, AUTHKEY_ENV: authkey.hex()},
                        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    )  # fmt: skip
                self._conn = self._accept(listener)
            self.ready = self.recv()
            self._check_ready()
        except BaseException as exc:
            tail = self._log_tail()
            self.stop()
            raise ChildError(f"{self.name} failed to start: {exc}{tail}") from exc
        return 1.0 / self.spec.fps, self._enter_realtime()

    def send(self, request: Any) -> None:
        """Our planning hints (RTC's guidance) are ours only; the LeRobot policy gets none."""
        obs, stamp, _hints = request
        super().send((obs, stamp, None))

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass  # already gone
        if process is not None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _accept(self, listener: Listener) -> Connection:
        """The server's connection; fails if it exits or takes `start_timeout` to connect."""
        accepted: list[Connection] = []

        def accept() -> None:
            try:
                accepted.append(listener.accept())
            except OSError:
                pass  # the listener was closed: the server did not come

        waiter = threading.Thread(target=accept, name="lerobot-accept", daemon=True)
        waiter.start()
        deadline = time.monotonic() + self.start_timeout
        while waiter.is_alive():
            waiter.join(0.1)
            if self._process.poll() is not None and waiter.is_alive():
                raise ChildError(f"the server exited ({self._process.returncode})")
            if time.monotonic() > deadline:
                raise ChildError(f"the server did not connect in {self.start_timeout} s")
        if not accepted:
            raise ChildError("the server's connection was refused")
        return accepted[0]

    def _check_ready(self) -> None:
        if self.ready["action_dim"] != self.spec.action_dim:
            raise ChildError(
                f"the policy's chunk has {self.ready['action_dim']} actions per step, its "
                f"config {self.spec.action_dim}"
            )
        if self.ready["chunk_len"] < self.spec.n_action_steps:
            raise ChildError(
                f"the policy's chunk has {self.ready['chunk_len']} steps, fewer than the "
                f"{self.spec.n_action_steps} it executes between plans (n_action_steps)"
            )

    def _enter_realtime(self) -> str | None:
        """SCHED_FIFO for the server's inference thread, set from here (it runs none of ours)."""
        if self.priority == 0:
            return "inference priority 0: normal scheduling"
        try:
            os.sched_setscheduler(
                self._process.pid,
                os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                os.sched_param(self.priority),
            )
        except OSError as exc:
            return f"SCHED_FIFO {self.priority} refused: {exc.strerror}"
        return None

    def _log_tail(self) -> str:
        if self._dir is None or not (self._dir / "stderr.log").exists():
            return ""
        lines = (self._dir / "stderr.log").read_text(errors="replace").strip().splitlines()
        return "\n" + "\n".join(lines[-15:]) if lines else ""


class LeRobotInference(ChildInference):
    """`ProcessInference`'s surface over a LeRobot policy folder (see `LeRobotChild`)."""

    def __init__(self, spec: LeRobotSpec, python: str | Path | None = None, **options: Any):
        super().__init__(LeRobotChild(spec, python or default_python(), **options))
