"""MotionRNN-style model (Wu et al., CVPR 2021): a PredRNN backbone with MotionGRU units and a motion highway.

Reference code: thuml/MotionRNN (``core/layers/MotionGRU.py``, ``core/models/MotionRNN_PredRNN.py``).
Between layers l and l + 1 (``baselines-spec.md`` §7) a MotionGRU refines h on a half-resolution,
quarter-width copy::

    e  = Enc(h)                                   # k x k conv, stride 2, F -> F/4
    u  = σ(W_u * [e, F_{t-1}]),  r = σ(W_r * [e, F_{t-1}]),  z = tanh(W_z * [e, r ⊙ F_{t-1}])
    F' = u ⊙ z + (1 - u) ⊙ F_{t-1}                 # transient variation (2·3² offsets per position)
    D_t = D_{t-1} + ½ (F_{t-1} - D_{t-1});  F_t = F' + D_t     # trending momentum
    warped = deform_conv2d(e, offset = F_t, mask = σ(W_w * e))  # a modulated 3x3 deformable conv
    d = Dec(warped)                               # 4x4 transposed conv, stride 2, F/4 -> F
    g = σ(W_g * [d, h]);   h <- g ⊙ d + (1 - g) ⊙ h            # layer l+1's input and layer l's next h

The motion highway adds (1 - o) ⊙ V to each ST-LSTM output, with V = W_first * x for layer 1 and
the previous layer's output before its MotionGRU above.

Deviations from the reference code: zero (not random xavier) initial states, so evaluation is
deterministic and any batch size works; no gradient-scaling hooks (a no-op there); the decoder's
output is cropped to the grid so odd latent sizes (SJTU4K's 17x30) work. As in the code, W_u, W_r,
W_z and W_w start at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

from baselines.common import StackConfig, same_conv
from baselines.predrnn import STLSTMCell
from vpbench.interface.codecs import build_codec
from vpbench.interface.predictor import Features, Geometry, Memory, RecurrentPredictor
from vpbench.interface.registry import model_builder

NEIGHBOURS = 3  # the n x n neighbourhood of the warp
OFFSETS = 2 * NEIGHBOURS * NEIGHBOURS  # (dy, dx) per neighbour: the motion state's channels


class MotionGRU(nn.Module):
    """``(h [B, F, h, w], F_{t-1}, D_{t-1} [B, 18, h', w']) -> (h refined, F_t, D_t)``, h' = ⌈h/2⌉."""

    def __init__(self, hidden: int, kernel: int):
        super().__init__()
        quarter = max(1, hidden // 4)
        self.encode = nn.Conv2d(hidden, quarter, kernel, stride=2, padding=kernel // 2)
        self.update = nn.Conv2d(quarter + OFFSETS, OFFSETS, 3, padding=1)
        self.reset = nn.Conv2d(quarter + OFFSETS, OFFSETS, 3, padding=1)
        self.candidate = nn.Conv2d(quarter + OFFSETS, OFFSETS, 3, padding=1)
        self.mask = nn.Conv2d(quarter, NEIGHBOURS * NEIGHBOURS, 3, padding=1)
        for conv in (self.update, self.reset, self.candidate, self.mask):
            nn.init.zeros_(conv.weight)
        self.warp = nn.Conv2d(quarter, quarter, NEIGHBOURS, padding=NEIGHBOURS // 2)  # weights for deform_conv2d
        self.decode = nn.ConvTranspose2d(quarter, hidden, 4, stride=2, padding=1)
        self.gate = same_conv(2 * hidden, hidden, kernel, bias=True)

    def forward(self, h: Tensor, motion: Tensor, trend: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.encode(h)  # [B, F/4, h', w']
        both = torch.cat([e, motion], dim=1)
        u = torch.sigmoid(self.update(both))
        r = torch.sigmoid(self.reset(both))
        z = torch.tanh(self.candidate(torch.cat([e, r * motion], dim=1)))
        transient = u * z + (1 - u) * motion
        trend = trend + 0.5 * (motion - trend)
        motion = transient + trend  # [B, 18, h', w']
        warped = deform_conv2d(e, motion, self.warp.weight, self.warp.bias, padding=NEIGHBOURS // 2,
                               mask=torch.sigmoid(self.mask(e)))
        d = self.decode(warped)[:, :, :h.shape[2], :h.shape[3]]  # [B, F, h, w]
        g = torch.sigmoid(self.gate(torch.cat([d, h], dim=1)))
        return g * d + (1 - g) * h, motion, trend


class MotionRNNMemory(Memory):
    """L ST-LSTM cells with the motion highway, L - 1 MotionGRUs between them, zigzag m.

    State: per layer (h, c) ``[B, F, h, w]``, one m, per MotionGRU (F, D) ``[B, 18, ⌈h/2⌉, ⌈w/2⌉]``.
    """

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.cells = nn.ModuleList(
            STLSTMCell(in_channels if i == 0 else hidden, hidden, kernel, forget_bias) for i in range(layers)
        )
        self.motion = nn.ModuleList(MotionGRU(hidden, kernel) for _ in range(layers - 1))
        self.first = nn.Conv2d(in_channels, hidden, 1)

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.hidden, height, width)
        motion = self._zeros(batch, OFFSETS, (height + 1) // 2, (width + 1) // 2)
        layers = len(self.cells)
        return {"h": [zero] * layers, "c": [zero] * layers, "m": zero,
                "motion": [motion] * (layers - 1), "trend": [motion] * (layers - 1)}

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        x, m = features.temporal, state["m"]
        highway = self.first(x)
        hs, cs, motions, trends = [], [], [], []
        for layer, cell in enumerate(self.cells):
            h, c, m, _, _ = cell(x, state["h"][layer], state["c"][layer], m, highway=highway)
            highway = h  # the next layer's highway: this output before its MotionGRU
            if layer < len(self.motion):
                h, motion, trend = self.motion[layer](h, state["motion"][layer], state["trend"][layer])
                motions.append(motion)
                trends.append(trend)
            hs.append(h)
            cs.append(c)
            x = h
        return Features.single(x), {"h": hs, "c": cs, "m": m, "motion": motions, "trend": trends}


@dataclass
class MotionRNNConfig(StackConfig):
    """MotionRNN options."""

    forget_bias: float = 1.0


@model_builder(MotionRNNConfig)
def build_motionrnn(cfg: MotionRNNConfig, geometry: Geometry) -> RecurrentPredictor:
    """MotionRNN-style (Wu et al. 2021): PredRNN with MotionGRU units and the motion highway."""
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    memory = MotionRNNMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, cfg.forget_bias)
    return RecurrentPredictor(codec, memory)
