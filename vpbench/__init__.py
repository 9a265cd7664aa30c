"""vpbench: a benchmark suite for video predictors.

The harness knows no model by name: models arrive through the ``vpbench.models`` entry points
(see :mod:`vpbench.interface.registry`). Frames are float tensors in [0, 1] of shape ``[B, T, C, H, W]``.
"""

__version__ = "0.1.0"
