"""Data: its sources (:mod:`vpbench.data.sources`: generated, package footage, prepared, hub), Hugging Face
``datasets`` storage, and loaders.

Frames leave this package as uint8 ``[B, T, C, H, W]``; the harness converts them to float in
[0, 1] once (:func:`to_float`).
"""

from __future__ import annotations

import torch

from vpbench.errors import DataError
from vpbench.config.schema import DataConfig
from vpbench.data.loader import ClipDataset, eval_loader, train_loader
from vpbench.data.sources import check_fits, dataset_path, fingerprint, prepare
from vpbench.data.storage import SPLITS, verify

__all__ = ["ClipDataset", "SPLITS", "check_fits", "dataset_path", "eval_loader", "fingerprint", "load_splits",
           "prepare", "to_float", "train_loader", "verify"]


def load_splits(cfg: DataConfig, progress: bool = True) -> dict[str, ClipDataset]:
    """``{"train", "val", "test"}`` -> ClipDataset, preparing the data set on first use.

    Every source yields ``[T_in + horizon, C, H, W]`` clips: longer stored clips are cut to their first
    frames, and a stored clip of another size is a DataError naming the data set. The config's clip
    counts bound each split.
    """
    stored = prepare(cfg, progress=progress)
    frames = cfg.context + cfg.horizon
    limits = {"train": cfg.train_clips, "val": cfg.val_clips, "test": cfg.test_clips}
    splits = {}
    for split in SPLITS:
        if len(stored[split]) == 0:
            raise DataError(f"{cfg.source} data set {cfg.name or dataset_path(cfg).name}: the {split} split is empty")
        t, c, h, w = stored[split][0]["shape"]
        if (c, h, w) != (cfg.channels, cfg.height, cfg.width) or t < frames:
            raise DataError(f"{cfg.source} data set {cfg.name or dataset_path(cfg).name} holds clips of {t} frames of "
                            f"{c}x{h}x{w}; the config asks {frames} frames of "
                            f"{cfg.channels}x{cfg.height}x{cfg.width} (data.context + data.horizon, data.channels, "
                            "data.height, data.width)")
        splits[split] = ClipDataset(stored[split], limit=limits[split], frames=frames)
    return splits


def to_float(clips: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, C, H, W]`` -> float32 in [0, 1]."""
    return clips.float().div_(255.0)
