"""PyTorch views of a prepared split: a Dataset of uint8 clips and DataLoaders of ``[B, T, C, H, W]``.

Training batches are a pure function of the step number (:class:`StepBatchSampler`): step s reads
batch ``s mod (N // B)`` of the permutation drawn for epoch ``s // (N // B)``. Resuming at step s
therefore needs nothing but s, and an interrupted run sees exactly the batches it would have seen.
Under several processes (:mod:`vpbench.run.distributed`) every process draws the same batch and keeps
its contiguous slice of it.
The loaders draw their worker seeds from a private generator, never from torch's global one, so
creating a loader (at a resume, for a validation pass) leaves the training randomness untouched.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vpbench.data.storage import decode_row
from vpbench.errors import DataError


class ClipDataset(Dataset):
    """A split of a prepared data set; item i is clip i as ``[T, C, H, W]`` uint8 (its first ``frames``)."""

    def __init__(self, split, limit: int | None = None, frames: int | None = None):
        self.split, self.frames = split, frames
        self.length = len(split) if not limit else min(limit, len(split))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        clip = decode_row(self.split[int(index)])
        return torch.from_numpy(clip[:self.frames].copy())

    def blocks(self) -> list[str] | None:
        """Each clip's block (the correlated clips it belongs to: its video or segment), or None where the
        clips are independent draws (generated data)."""
        if "block" not in self.split.column_names:
            return None
        return list(self.split.select(range(self.length))["block"])


class StepBatchSampler(Sampler[list[int]]):
    """Yields the index batches of steps ``start .. stop - 1``, seeded per epoch, dropping the remainder.

    ``part`` is this process's slice of every global batch of ``batch_size`` indices (all of it in one process).
    """

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int, part: slice = slice(None)):
        if size < batch_size:
            raise DataError(f"train split has {size} clips, fewer than train.batch_size = {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.part = start, stop, part
        self.per_epoch = size // batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        epoch, order = None, None
        for step in range(self.start, self.stop):
            if step // self.per_epoch != epoch:
                epoch = step // self.per_epoch
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                order = torch.randperm(self.size, generator=generator)
            offset = (step % self.per_epoch) * self.batch_size
            yield order[offset:offset + self.batch_size][self.part].tolist()


def train_loader(dataset: ClipDataset, batch_size: int, seed: int, start: int, stop: int,
                 part: slice = slice(None)) -> DataLoader:
    """Batches ``[B, T, C, H, W]`` uint8 for training steps ``start .. stop - 1`` (``part`` of each, see above)."""
    sampler = StepBatchSampler(len(dataset), batch_size, seed, start, stop, part)
    return DataLoader(dataset, batch_sampler=sampler, generator=torch.Generator().manual_seed(seed))


def eval_loader(dataset: ClipDataset, batch_size: int) -> DataLoader:
    """All clips in order, ``[B, T, C, H, W]`` uint8 (the last batch may be smaller)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator().manual_seed(0))
