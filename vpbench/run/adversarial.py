"""Adversarial and learned-perceptual (LP) training for any predictor (STRPM §3.3, eq. 10-12).

The discriminator judges single frames in the codec's patched space (``strpm-spec.md`` §4): a
3x3 stride-2 conv p²C -> D, GroupNorm(4), ReLU, then further [3x3 stride-2 conv D -> D, GroupNorm,
ReLU] blocks until the shorter side is down to 1 or 2, flattened into a linear layer and a
sigmoid. D = 64 in the released code, 128 in the paper (``train.adversarial.width``).

Per training step, after the predictor's forward pass (the released code's order):

1. the discriminator is updated with BCE(D(x̂), 0) + BCE(D(x), 1) on the detached predictions x̂
   and the true frames x;
2. the predictor's loss adds λ1·L_LP + λ2·L_GAN using the *updated* discriminator, where
   L_LP = MSE(D_k(x̂), D_k(x)) on the flattened output of block k (the deepest by default) and
   L_GAN = BCE(D(x̂), 1).

``score: sequence`` (released code) averages the per-frame probabilities of a clip before the
BCE; ``score: frame`` takes the BCE per frame (eq. 10's per-frame log D, averaged over frames).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpbench.interface.codecs import patch_reshape
from vpbench.config.schema import TrainConfig
from vpbench.interface.predictor import Geometry

_EPS = 1e-7


class Discriminator(nn.Module):
    """Per-frame real/fake probability on patched frames.

    Shapes: ``[N, p²C, h, w]`` -> probability ``[N]`` and the flattened output of every block
    (``[N, D·h_k·w_k]``), the LP loss's features.
    """

    def __init__(self, in_channels: int, width: int, grid: tuple[int, int]):
        super().__init__()
        blocks = max(1, int(math.floor(math.log2(min(grid)))))
        h, w = grid
        layers = []
        for i in range(blocks):
            layers.append(nn.Sequential(
                nn.Conv2d(in_channels if i == 0 else width, width, 3, stride=2, padding=1),
                nn.GroupNorm(4, width),
                nn.ReLU(),
            ))
            h, w = (h + 1) // 2, (w + 1) // 2
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(width * h * w, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x.flatten(1))
        return torch.sigmoid(self.head(features[-1])).squeeze(1), features


class Adversary:
    """The discriminator, its optimiser and the two extra predictor losses of a GAN (+ LP) run."""

    def __init__(self, cfg: TrainConfig, geometry: Geometry, device: torch.device):
        options = cfg.adversarial
        self.use_lp = cfg.loss == "mse+gan+lp"
        self.lambda_lp, self.lambda_gan = options.lambda_lp, options.lambda_gan
        self.lp_layer, self.score = options.lp_layer, options.score
        self.patch = geometry.patch
        grid = (geometry.height // geometry.patch, geometry.width // geometry.patch)
        channels = geometry.patch * geometry.patch * geometry.channels
        self.discriminator = Discriminator(channels, options.width, grid).to(device)
        if not -len(self.discriminator.blocks) <= options.lp_layer < len(self.discriminator.blocks):
            raise ValueError(f"train.adversarial.lp_layer: {options.lp_layer} is not one of the "
                             f"{len(self.discriminator.blocks)} discriminator blocks")
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=options.lr)

    def _judge(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, C, H, W]`` -> per-frame probabilities ``[B, T]`` and LP features ``[B, T, K]``."""
        b, t = frames.shape[:2]
        patched = patch_reshape(frames.flatten(0, 1).float(), self.patch)  # [B*T, p²C, H/p, W/p]
        probability, features = self.discriminator(patched)
        return probability.view(b, t), features[self.lp_layer].view(b, t, -1)

    def _bce(self, probability: Tensor, real: bool) -> Tensor:
        """BCE of ``[B, T]`` probabilities against the label, per clip (``sequence``) or per frame."""
        if self.score == "sequence":
            probability = probability.mean(1)
        probability = probability.clamp(_EPS, 1 - _EPS)
        return -(probability.log() if real else (1 - probability).log()).mean()

    def update_discriminator(self, fake: Tensor, real: Tensor) -> float:
        """One Adam step on BCE(D(fake), 0) + BCE(D(real), 1); ``fake`` is detached here."""
        with torch.autocast(real.device.type, enabled=False):
            fake_probability, _ = self._judge(fake.detach())
            real_probability, _ = self._judge(real)
            loss = self._bce(fake_probability, real=False) + self._bce(real_probability, real=True)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, float]]:
        """λ1·L_LP (when LP is on) + λ2·L_GAN for the predictor; gradients reach only ``fake``."""
        with torch.autocast(real.device.type, enabled=False):
            fake_probability, fake_features = self._judge(fake)
            gan = self._bce(fake_probability, real=True)
            loss = self.lambda_gan * gan
            parts = {"gan": gan.item()}
            if self.use_lp:
                with torch.no_grad():
                    _, real_features = self._judge(real)
                lp = F.mse_loss(fake_features, real_features)
                loss = loss + self.lambda_lp * lp
                parts["lp"] = lp.item()
        return loss, parts

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
