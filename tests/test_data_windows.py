"""Training windows: Diffusion-Policy offsets, LeRobot-style clamping and padding masks."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from test_data_common import CAMERA, frame, image, write_dataset

from robot_policy.data import LeRobotDataset, WindowDataset

LENGTHS = [6, 9]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("windows")
    write_dataset(root, LENGTHS)
    return LeRobotDataset(root)


def test_shapes_follow_n_obs_steps_and_horizon(ds):
    win = WindowDataset(ds, n_obs_steps=2, horizon=4)
    assert len(win) == sum(LENGTHS)
    sample = win[3]
    assert sample["observation.state"].shape == (2, 8)
    assert sample["observation.environment_state"].shape == (2, 3)
    assert sample[CAMERA].shape == (2, *image(0, 0).shape) and sample[CAMERA].dtype == np.uint8
    assert sample["action"].shape == (4, 8)
    assert sample["action_is_pad"].dtype == bool and sample["action_is_pad"].shape == (4,)
    # Frame 3 of episode 0: observations at frames 2, 3; actions at frames 2..5.
    np.testing.assert_array_equal(sample["observation.state"][0], frame(0, 2)["observation.state"])
    np.testing.assert_array_equal(sample["action"][-1], frame(0, 5)["action"])
    assert not sample["action_is_pad"].any() and not sample["observation.state_is_pad"].any()
    assert int(sample["index"]) == 3 and int(sample["episode_index"]) == 0


def test_padding_clamps_to_the_episode_edges(ds):
    win = WindowDataset(ds, n_obs_steps=2, horizon=4)
    first = win[6]  # first frame of episode 1
    np.testing.assert_array_equal(first["observation.state_is_pad"], [True, False])
    np.testing.assert_array_equal(first["observation.state"][0], frame(1, 0)["observation.state"])
    np.testing.assert_array_equal(first[CAMERA][0], first[CAMERA][1])
    np.testing.assert_array_equal(first["action_is_pad"], [True, False, False, False])

    last = win[5]  # last frame of episode 0: actions 4, 5, then padding with frame 5's action
    np.testing.assert_array_equal(last["action_is_pad"], [False, False, True, True])
    for step in (1, 2, 3):
        np.testing.assert_array_equal(last["action"][step], frame(0, 5)["action"])
    assert int(last["episode_index"]) == 0


def test_delta_timestamps_match_the_step_convention(ds):
    by_steps = WindowDataset(ds, n_obs_steps=2, horizon=4)
    by_time = WindowDataset(
        ds,
        delta_timestamps={
            "observation.state": [-0.1, 0.0],
            CAMERA: [-0.1, 0.0],
            "action": [-0.1, 0.0, 0.1, 0.2],
        },
    )
    for i in (0, 5, 6, 14):
        a, b = by_steps[i], by_time[i]
        for key in ("observation.state", CAMERA, "action"):
            np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_array_equal(a[f"{key}_is_pad"], b[f"{key}_is_pad"])
    with pytest.raises(ValueError, match="not multiples of 1/10"):
        WindowDataset(ds, delta_timestamps={"action": [0.0, 0.05]})
    with pytest.raises(ValueError, match="not features"):
        WindowDataset(ds, delta_timestamps={"nope": [0.0]})


def test_camera_windows_match_decoded_episodes(ds):
    win = WindowDataset(ds, n_obs_steps=3, horizon=3)
    episode = ds.episode(1)[CAMERA]
    for t in reversed(range(LENGTHS[1])):  # backwards: every window misses the cache first
        frames = win[LENGTHS[0] + t][CAMERA]
        for k, offset in enumerate((-2, -1, 0)):
            np.testing.assert_array_equal(frames[k], episode[max(t + offset, 0)])
    assert np.abs(episode[4].astype(int) - image(1, 4)).mean() < 8


def test_pickles_for_dataloader_workers(ds):
    win = WindowDataset(ds, n_obs_steps=2, horizon=4)
    win[7]  # open a video file and fill the cache first
    clone = pickle.loads(pickle.dumps(win))
    for key, value in win[7].items():
        np.testing.assert_array_equal(clone[7][key], value)


def test_a_cache_sized_to_the_dataset_decodes_each_frame_once(tmp_path, monkeypatch):
    write_dataset(tmp_path, LENGTHS)
    small, whole = LeRobotDataset(tmp_path, frame_cache_size=2), LeRobotDataset(tmp_path)
    whole.resize_frame_cache(len(whole))
    decoded = {id(small): 0, id(whole): 0}
    original = LeRobotDataset._decode

    def counting(self, key, episode, first, last):
        decoded[id(self)] += last - first + 1
        return original(self, key, episode, first, last)

    monkeypatch.setattr(LeRobotDataset, "_decode", counting)
    order = np.random.default_rng(0).permutation(len(whole))
    for _epoch in range(3):
        for i in order:
            np.testing.assert_array_equal(small[int(i)][CAMERA], whole[int(i)][CAMERA])
    assert decoded[id(whole)] == len(whole)  # in the first epoch, never again
    assert decoded[id(small)] > 2 * len(whole)
    with pytest.raises(ValueError, match=">= 0"):
        whole.resize_frame_cache(-1)


def test_works_with_torch_dataloader_collation(ds):
    from torch.utils.data import DataLoader  # imported here: the other tests need no torch

    batch = next(iter(DataLoader(WindowDataset(ds, n_obs_steps=2, horizon=4), batch_size=5)))
    assert tuple(batch["action"].shape) == (5, 4, 8)
    assert tuple(batch[CAMERA].shape)[:2] == (5, 2)
    assert str(batch["action_is_pad"].dtype) == "torch.bool"


def test_reader_imports_no_torch():
    code = "import sys, robot_policy.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
