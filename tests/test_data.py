"""The embedded data: deterministic, disjoint splits, any size, stored as a memory-mapped HF dataset."""

import hashlib

import numpy as np
import pytest
import torch

from vpbench.config.schema import DataConfig
from vpbench.data import dataset_path, fingerprint, load_splits, train_loader
from vpbench.data.loader import StepBatchSampler
from vpbench.data.moving_objects import generate_clip
from vpbench.errors import DataError

SMALL = DataConfig(height=32, width=48, train_clips=12, val_clips=4, test_clips=4)


def test_clips_are_deterministic_and_uint8_tchw():
    a, b = generate_clip(SMALL, "train", 3), generate_clip(SMALL, "train", 3)
    assert a.dtype == np.uint8 and a.shape == (8, 3, 32, 48)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[-1])  # objects move


def test_splits_never_share_a_clip():
    digests = {split: {hashlib.sha256(generate_clip(SMALL, split, i).tobytes()).hexdigest() for i in range(30)}
               for split in ("train", "val", "test")}
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


def test_grey_frames_and_black_background():
    cfg = DataConfig(height=64, width=64, channels=1)
    cfg.moving_objects.background = "black"
    clip = generate_clip(cfg, "test", 0)
    assert clip.shape == (8, 1, 64, 64)
    assert (clip == 0).mean() > 0.3


def test_4k_frames_generate():
    cfg = DataConfig(height=2176, width=3840, context=1, horizon=1)
    clip = generate_clip(cfg, "test", 0)
    assert clip.shape == (2, 3, 2176, 3840)
    assert clip.std() > 5


def test_stored_dataset_round_trips_and_is_memory_mapped():
    splits = load_splits(SMALL, progress=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "val": 4, "test": 4}
    assert torch.equal(splits["val"][2], torch.from_numpy(generate_clip(SMALL, "val", 2)))
    assert (dataset_path(SMALL) / "train").is_dir()
    assert splits["train"].split.cache_files  # backed by Arrow files on disk, not memory
    again = load_splits(SMALL, progress=False)  # cached: loads, does not rebuild
    assert torch.equal(again["test"][0], splits["test"][0])


def test_fingerprint_changes_with_content_only():
    other = DataConfig(height=32, width=48, train_clips=12, val_clips=4, test_clips=4, seed=1)
    assert fingerprint(SMALL) != fingerprint(other)
    assert fingerprint(SMALL) == fingerprint(DataConfig(height=32, width=48, train_clips=12, val_clips=4, test_clips=4))


def test_loader_yields_btchw_batches_that_depend_only_on_the_step():
    splits = load_splits(SMALL, progress=False)
    full = [b for b in train_loader(splits["train"], 4, seed=7, start=0, stop=7)]
    assert full[0].shape == (4, 8, 3, 32, 48) and full[0].dtype == torch.uint8
    resumed = [b for b in train_loader(splits["train"], 4, seed=7, start=4, stop=7)]
    assert all(torch.equal(x, y) for x, y in zip(full[4:], resumed))
    epoch = list(StepBatchSampler(12, 4, seed=7, start=0, stop=3))
    assert sorted(i for batch in epoch for i in batch) == list(range(12))  # one epoch covers every clip once


def test_too_few_clips_for_a_batch_is_a_clear_error():
    with pytest.raises(DataError, match="train split has 3 clips, fewer than train.batch_size = 4"):
        StepBatchSampler(3, 4, 0, 0, 1)


def test_creating_loaders_leaves_the_global_rng_alone():
    from vpbench.data import eval_loader

    splits = load_splits(SMALL, progress=False)
    state = torch.get_rng_state()
    next(iter(train_loader(splits["train"], 4, seed=0, start=3, stop=5)))
    next(iter(eval_loader(splits["val"], 2)))
    assert torch.equal(torch.get_rng_state(), state)
