"""TAU, the Temporal Attention Unit (Tan et al., CVPR 2023): SimVP's encoder and decoder (:mod:`baselines.simvp`)
around a translator whose attention splits into intra-frame statical attention and inter-frame dynamical
attention, trained with MSE plus the differential divergence regularisation.

Written from the paper; OpenSTL's ``TAUSubBlock`` / ``TemporalAttentionModule`` were read to match its
Moving MNIST configuration (hid_S 64, hid_T 512, N_S 4, N_T 8), where its published counts are 44.7 M
parameters and 16.0 G FLOPs (fvcore MACs) per sample.

* **Statical attention** (within a frame's channels): a 21x21 depthwise receptive field as a 5x5 depthwise
  conv, a 7x7 depthwise conv with dilation 3, then a 1x1 conv: ``SA(x)``, ``[N, D, h, w]``.
* **Dynamical attention** (across the stacked frames): squeeze-and-excitation of the channels,
  ``DA(x) = σ(W2 · ReLU(W1 · avgpool(x)))`` with a bottleneck of ``D / max(D / 16, 4)`` units.
* The unit is ``SA(x) ⊙ DA(x) ⊙ x`` inside gSTA's block (1x1 -> GELU -> unit -> 1x1 + shortcut, BN,
  layer-scaled residuals, the same MLP).
* **Differential divergence regularisation**: with Δŷ and Δy the differences of consecutive predicted and
  true frames, each flattened and turned into a distribution by ``softmax(Δ / τ)`` over its pixels,
  ``L_DDR = mean(KL(σ(Δŷ) ‖ σ(Δy)))``; the loss is ``MSE + α · L_DDR`` (τ = 0.1, α = 0.1 on Moving MNIST).
  It needs the true future, which the harness hands the rollout in training (``future``); the model keeps
  the term for :meth:`auxiliary_loss`, which the trainer adds (zero for fewer than three predicted frames).

Shapes as :class:`~baselines.simvp.SimVP`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.simvp import AttentionUnit, SimVP, SimVPConfig, SubBlock, large_kernel_convs
from vpbench.interface.predictor import Geometry, check_rollout_inputs
from vpbench.interface.registry import model_builder


class TemporalAttention(nn.Module):
    """``SA(x) ⊙ DA(x) ⊙ x``: statical (large-kernel) times dynamical (squeeze-excitation) attention,
    ``[N, D, h, w]`` -> ``[N, D, h, w]``."""

    def __init__(self, dim: int, kernel: int = 21, reduction: int = 16):
        super().__init__()
        self.conv0, self.conv_spatial = large_kernel_convs(dim, kernel)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        squeezed = dim // max(dim // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(dim, squeezed, bias=False), nn.ReLU(),
                                nn.Linear(squeezed, dim, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        statical = self.conv1(self.conv_spatial(self.conv0(x)))  # [N, D, h, w]
        dynamical = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]  # [N, D, 1, 1]
        return statical * dynamical * x


def tau_block(dim: int, mlp_ratio: float, drop_path: float) -> SubBlock:
    """A TAU translator block."""
    return SubBlock(dim, AttentionUnit(dim, TemporalAttention(dim)), mlp_ratio, drop_path)


def differential_divergence(prediction: Tensor, target: Tensor, temperature: float, eps: float = 1e-12) -> Tensor:
    """TAU's L_DDR of ``[B, T, C, H, W]`` predictions against their targets (0 for T < 3)."""
    b, t = prediction.shape[:2]
    if t < 3:
        return prediction.new_zeros(())
    predicted = F.softmax((prediction[:, 1:] - prediction[:, :-1]).reshape(b, t - 1, -1) / temperature, dim=-1)
    true = F.softmax((target[:, 1:] - target[:, :-1]).reshape(b, t - 1, -1) / temperature, dim=-1)
    return (predicted * torch.log(predicted / (true + eps) + eps)).mean()


class TAU(SimVP):
    """SimVP with TAU's translator; in training, keeps ``α · L_DDR`` of the horizon for the trainer."""

    def __init__(self, geometry: Geometry, cfg: TAUConfig):
        super().__init__(geometry, cfg, lambda dim, drop_path: tau_block(dim, cfg.mlp_ratio, drop_path))
        self.alpha, self.temperature = cfg.alpha, cfg.temperature
        self._auxiliary: Tensor | None = None

    def rollout(self, context: Tensor, horizon: int, future: Tensor | None = None,
                teacher_forcing: float = 0.0, context_forcing: float = 1.0) -> Tensor:
        check_rollout_inputs(type(self).__name__, context, horizon, future)
        frames = super().rollout(context, horizon, future, teacher_forcing, context_forcing)
        self._auxiliary = None
        if future is not None and self.training and self.alpha > 0:
            self._auxiliary = self.alpha * differential_divergence(frames[:, -horizon:], future, self.temperature)
        return frames

    def auxiliary_loss(self) -> Tensor | None:
        return self._auxiliary


@dataclass
class TAUConfig(SimVPConfig):
    """SimVP's sizes plus the regulariser; the defaults are OpenSTL's Moving MNIST configuration."""

    alpha: float = 0.1  # weight of the differential divergence regularisation (0: MSE alone)
    temperature: float = 0.1  # τ of its softmax


@model_builder(TAUConfig)
def build_tau(cfg: TAUConfig, geometry: Geometry) -> TAU:
    """TAU: SimVP's encoder and decoder with temporal attention units, MSE + α · differential divergence."""
    cfg.check_geometry(geometry)
    return TAU(geometry, cfg)
