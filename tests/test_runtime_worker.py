"""InferenceWorker with a tiny real policy on CPU; synchronised on events, never on sleeps."""

import itertools
import threading

import numpy as np
import pytest
import torch

from robot_policy.policies import FlowConfig, make_policy
from robot_policy.runtime.worker import InferenceError, InferenceWorker

WAIT = 10.0  # bound on every wait; only reached if the worker is broken

CONFIG = FlowConfig(
    action_dim=3,
    state_keys=("observation.state",),
    state_dims=(4,),
    camera_keys=("observation.images.front",),
    down_dims=(16, 32),
    step_embed_dim=16,
    state_hidden_dim=32,
    state_feature_dim=16,
    image_channels=(8, 16),
    image_keypoints=4,
    image_feature_dim=8,
    image_size=(16, 16),
    crop_size=(12, 12),
    horizon=8,
    n_obs_steps=2,
    n_action_steps=4,
    num_inference_steps=2,
    fps=20.0,
)


def obs(value: float = 0.0) -> dict[str, np.ndarray]:
    """An unbatched history; `value` marks it so a test can tell which request ran."""
    n = CONFIG.n_obs_steps
    return {
        "observation.state": np.full((n, 4), value, dtype=np.float32),
        "observation.images.front": np.zeros((n, *CONFIG.image_size, 3), dtype=np.uint8),
    }


class Spy:
    """Wraps predict_chunk: records each call, can block the next ones, raise or return NaN."""

    def __init__(self, policy):
        self.inner = policy.predict_chunk
        self.calls: list[tuple[float, int]] = []  # (state marker, torch threads in the call)
        self.block = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail: Exception | None = None
        self.nan = False
        policy.predict_chunk = self

    def __call__(self, batch, noise=None):
        self.calls.append((float(batch["observation.state"][0, -1, 0]), torch.get_num_threads()))
        if self.block:
            self.entered.set()
            assert self.release.wait(WAIT)
        if self.fail is not None:
            raise self.fail
        chunk = self.inner(batch, noise)
        return torch.full_like(chunk, torch.nan) if self.nan else chunk


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def policy():
    torch.manual_seed(0)
    return make_policy(CONFIG)


def test_chunk_is_stamped_timed_and_starts_at_the_current_step(policy, restore_threads):
    ticks = itertools.count(0.0, 0.5)
    with InferenceWorker(policy, clock=lambda: next(ticks)) as worker:
        assert worker.poll() is None
        worker.submit(obs(), stamp=12.5)
        assert worker.wait_idle(WAIT)
        chunk = worker.poll()
        assert worker.poll() is None  # delivered once
    assert chunk.stamp == 12.5
    assert chunk.dt == 1 / CONFIG.fps
    assert chunk.actions.shape == (CONFIG.horizon - CONFIG.n_obs_steps + 1, CONFIG.action_dim)
    assert np.all(np.isfinite(chunk.actions))
    stats = worker.stats()
    assert stats["submitted"] == stats["completed"] == 1 and stats["errors"] == 0
    assert stats["latency_ms_p50"] == stats["latency_ms_p99"] == 500.0  # the injected clock


def test_actions_are_the_policy_window_from_index_n_obs_steps_minus_one(policy, restore_threads):
    window = torch.arange(CONFIG.horizon * 3, dtype=torch.float32).reshape(1, CONFIG.horizon, 3)
    policy.predict_chunk = lambda batch, noise=None: window
    with InferenceWorker(policy, warmup=0) as worker:
        worker.submit(obs(), stamp=1.0)
        assert worker.wait_idle(WAIT)
        chunk = worker.poll()
    np.testing.assert_array_equal(chunk.actions, window[0, CONFIG.n_obs_steps - 1 :].numpy())


def test_start_warms_up_in_a_thread_with_the_requested_thread_count(policy, restore_threads):
    torch.set_num_threads(2)
    spy = Spy(policy)
    worker = InferenceWorker(policy, threads=1, warmup=3)
    worker.start()
    try:
        assert len(spy.calls) == 3  # before start() returned
        assert all(threads == 1 for _, threads in spy.calls)
        stats = worker.stats()
        assert stats["completed"] == 0 and np.isnan(stats["latency_ms_p50"])  # not counted
    finally:
        worker.stop()


def test_newest_submission_replaces_an_unstarted_one(policy, restore_threads):
    spy = Spy(policy)
    with InferenceWorker(policy, warmup=0) as worker:
        spy.block = True
        worker.submit(obs(1.0), stamp=1.0)
        assert spy.entered.wait(WAIT)  # request 1 is running and held
        worker.submit(obs(2.0), stamp=2.0)
        worker.submit(obs(3.0), stamp=3.0)  # replaces 2 before it started
        assert worker.busy
        assert worker.poll() is None
        spy.release.set()
        assert worker.wait_idle(WAIT)
        assert not worker.busy
        chunk = worker.poll()
        assert worker.poll() is None
    assert chunk.stamp == 3.0  # 1 also finished, but only the newest is handed out
    assert [marker for marker, _ in spy.calls] == [1.0, 3.0]
    stats = worker.stats()
    assert stats["submitted"] == 3 and stats["replaced"] == 1 and stats["completed"] == 2


def test_an_exception_surfaces_on_poll_and_the_worker_carries_on(policy, restore_threads):
    spy = Spy(policy)
    with InferenceWorker(policy, warmup=0) as worker:
        spy.fail = RuntimeError("boom")
        worker.submit(obs(), stamp=4.0)
        assert worker.wait_idle(WAIT)
        with pytest.raises(InferenceError, match=r"stamp 4\.0.*boom") as info:
            worker.poll()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert worker.poll() is None  # raised once
        spy.fail = None
        worker.submit(obs(), stamp=5.0)
        assert worker.wait_idle(WAIT)
        assert worker.poll().stamp == 5.0
    assert worker.stats()["errors"] == 1


def test_a_nan_chunk_is_reported_never_delivered(policy, restore_threads):
    spy = Spy(policy)
    with InferenceWorker(policy, warmup=0) as worker:
        spy.nan = True
        worker.submit(obs(), stamp=6.0)
        assert worker.wait_idle(WAIT)
        with pytest.raises(InferenceError, match="NaN") as info:
            worker.poll()
        assert isinstance(info.value.__cause__, ValueError)
        assert worker.poll() is None


def test_a_failed_warm_up_is_raised_from_start(policy, restore_threads):
    Spy(policy).fail = RuntimeError("no memory")
    worker = InferenceWorker(policy)
    with pytest.raises(InferenceError, match="warm-up failed.*no memory"):
        worker.start()
    assert not worker._thread.is_alive()


def test_stop_joins_the_thread_and_refuses_later_work(policy, restore_threads):
    worker = InferenceWorker(policy, warmup=0)
    with pytest.raises(RuntimeError, match="started"):
        worker.submit(obs(), stamp=0.0)
    with worker:
        thread = worker._thread
        assert thread.is_alive()
        with pytest.raises(KeyError, match="observation.images.front"):
            worker.submit({"observation.state": obs()["observation.state"]}, stamp=0.0)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(obs(), stamp=0.0)
