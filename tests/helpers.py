"""Helpers shared by the model tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, resolve
from vpbench.data.moving_objects import generate_clip


def build_smoke(config_name: str, **overrides):
    """``(predictor, resolved config)`` for ``configs/models/<config_name>.yaml`` at the smoke scale."""
    config = resolve(RunSpec(config_name), "smoke", overrides or None)
    torch.manual_seed(0)
    return registry.build(config.model, config.data.geometry()), config


def smoke_clip(config, batch: int = 1, index: int = 0) -> torch.Tensor:
    """Real clips of the config's data, float ``[B, T, C, H, W]``."""
    clips = [torch.from_numpy(generate_clip(config.data, "train", index + i)) for i in range(batch)]
    return torch.stack(clips).float() / 255


def overfit(model, clip: torch.Tensor, context: int, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    """Train on one clip with teacher forcing; return the first and the last loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    horizon = clip.shape[1] - context
    losses = []
    for _ in range(steps):
        prediction = model.rollout(clip[:, :context], horizon, clip[:, context:], teacher_forcing=1.0)
        loss = F.mse_loss(prediction, clip[:, 1:])
        aux = model.auxiliary_loss()
        if aux is not None:
            loss = loss + aux
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], min(losses[-10:])
