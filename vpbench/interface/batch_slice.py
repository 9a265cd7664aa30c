"""Which slice of each global training batch this process holds, for code inside a model's rollout.

Scheduled sampling draws one coin per sample of the *global* batch in every process and keeps its own
slice (:func:`vpbench.interface.predictor.mix_frames`), so every process consumes the same random
numbers. The trainer says which slice is this process's with :func:`slicing_batches` (a context
variable, not a module global); outside it every batch is whole.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_PLACE: ContextVar[tuple[int, int]] = ContextVar("vpbench_batch_place", default=(0, 1))  # (rank, world)


@contextmanager
def slicing_batches(rank: int, world: int):
    """While active, :func:`batch_slice` gives process ``rank`` of ``world`` its slice of each global batch."""
    token = _PLACE.set((rank, world))
    try:
        yield
    finally:
        _PLACE.reset(token)


def batch_slice(local_batch: int) -> tuple[int, slice]:
    """``(global batch, this process's slice of it)`` for a local batch of ``local_batch`` samples."""
    rank, world = _PLACE.get()
    return local_batch * world, slice(rank * local_batch, (rank + 1) * local_batch)
