"""ConvLSTM (Shi et al., NeurIPS 2015) as a Memory on the shared codec.

Cell (``baselines-spec.md`` §2), per layer l and step t, with x the layer's input::

    i, f, g, o = split(W_x * x_t + W_h * h_{t-1})          # two bias-free k x k convs to 4F
    c_t = σ(f + forget_bias) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(c_t)

Deviations from the 2015 paper, as in the common PyTorch code (OpenSTL at HEAD): no peephole
weights, no biases, and no encoder/forecaster split; the stack reads out through the shared codec.
Unlike OpenSTL: a configurable forget bias (default +1, as in the PredRNN-family cells) and none of
its unused ``conv_o`` / ``conv_last`` modules. Parameters per layer: 4F·(C_in + F)·k², i.e. 8F²k²
for C_in = F.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from baselines.common import StackConfig, same_conv
from vpbench.interface.codecs import build_codec
from vpbench.interface.fusion import summed_conv
from vpbench.interface.predictor import Features, Geometry, Memory, RecurrentPredictor
from vpbench.interface.registry import model_builder


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: ``(x [B, C_in, h, w], (h, c) [B, F, h, w] each) -> (h, c)``.

    ``fused``: W_x * x + W_h * h as one conv over ``[x, h]`` (:func:`vpbench.interface.fusion.summed_conv`).
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.forget_bias, self.fused = forget_bias, False
        self.conv_x = same_conv(in_channels, 4 * hidden, kernel)
        self.conv_h = same_conv(hidden, 4 * hidden, kernel)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        if self.fused:
            gates = summed_conv([(x, self.conv_x.weight), (h, self.conv_h.weight)], self.conv_x.padding[0])
        else:
            gates = self.conv_x(x) + self.conv_h(h)
        i, f, g, o = torch.chunk(gates, 4, dim=1)  # 4 x [B, F, h, w]
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMMemory(Memory):
    """L stacked ConvLSTM cells; layer 1 reads the codec's features, layer l > 1 reads h^{l-1}.

    State: a list of L ``(h, c)`` pairs, each ``[B, F, h, w]``, zero at the start. Returns
    ``Features.single(h^L)``.
    """

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, forget_bias: float):
        super().__init__()
        self.hidden = hidden
        self.cells = nn.ModuleList(
            ConvLSTMCell(in_channels if i == 0 else hidden, hidden, kernel, forget_bias) for i in range(layers)
        )

    def init_state(self, batch: int, height: int, width: int) -> list[tuple[Tensor, Tensor]]:
        return [(self._zeros(batch, self.hidden, height, width),) * 2 for _ in self.cells]

    def step(self, features: Features, state: list[tuple[Tensor, Tensor]]) -> tuple[Features, list]:
        x = features.temporal
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            h, c = cell(x, layer_state)
            new_state.append((h, c))
            x = h
        return Features.single(x), new_state


@dataclass
class ConvLSTMConfig(StackConfig):
    """ConvLSTM options; sizes default to the paper scale (16 x 128, 5x5)."""

    forget_bias: float = 1.0  # added inside σ of the forget gate (0 reproduces OpenSTL's cell)


@model_builder(ConvLSTMConfig)
def build_convlstm(cfg: ConvLSTMConfig, geometry: Geometry) -> RecurrentPredictor:
    """ConvLSTM (Shi et al. 2015): L stacked 4-gate ConvLSTM cells on the shared codec."""
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    memory = ConvLSTMMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, cfg.forget_bias)
    return RecurrentPredictor(codec, memory)
