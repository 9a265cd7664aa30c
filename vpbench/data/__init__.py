"""Data: the embedded procedural generator, Hugging Face ``datasets`` storage, and loaders.

Frames leave this package as uint8 ``[B, T, C, H, W]``; the harness converts them to float in
[0, 1] once (:func:`to_float`).
"""

from __future__ import annotations

import torch

from vpbench.schema import DataConfig
from vpbench.data.loader import ClipDataset, eval_loader, train_loader
from vpbench.data.storage import SPLITS, check_fits, dataset_path, fingerprint, prepare, verify

__all__ = ["ClipDataset", "SPLITS", "check_fits", "dataset_path", "eval_loader", "fingerprint", "load_splits",
           "prepare", "to_float", "train_loader", "verify"]


def load_splits(cfg: DataConfig, progress: bool = True) -> dict[str, ClipDataset]:
    """``{"train", "val", "test"}`` -> ClipDataset, preparing the data set on first use."""
    stored = prepare(cfg, progress=progress)
    return {split: ClipDataset(stored[split]) for split in SPLITS}


def to_float(clips: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, C, H, W]`` -> float32 in [0, 1]."""
    return clips.float().div_(255.0)
