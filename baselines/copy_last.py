"""Copy-last-frame: every future frame is the last context frame.

The floor every table shows: a model that does not beat it has learned nothing about motion. It is
registered like any model and has no parameters, so the harness tests (store, suites, tables) run
on it without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vpbench.interface.predictor import Geometry, Predictor, check_rollout_inputs
from vpbench.interface.registry import model_builder


@dataclass
class CopyLastConfig:
    """Copy-last has no options."""


class CopyLast(Predictor):
    """Predicts frame t + 1 as frame t; beyond the context, the last context frame.

    Shapes: context ``[B, T_in, C, H, W]`` -> rollout ``[B, T_in - 1 + horizon, C, H, W]``.
    """

    def rollout(self, context: Tensor, horizon: int, future: Tensor | None = None,
                teacher_forcing: float = 0.0, context_forcing: float = 1.0) -> Tensor:
        check_rollout_inputs(type(self).__name__, context, horizon, future)
        last = context[:, -1:].expand(-1, horizon - 1, -1, -1, -1)  # [B, horizon - 1, C, H, W]
        return torch.cat([context, last], dim=1)


@model_builder(CopyLastConfig)
def build_copy_last(cfg: CopyLastConfig, geometry: Geometry) -> CopyLast:
    """Copy-last-frame baseline: repeats the last context frame (no parameters)."""
    return CopyLast()
