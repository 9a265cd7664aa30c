"""PredRNN (Wang et al., NeurIPS 2017) and PredRNN-V2 (TPAMI 2022): the ST-LSTM with a zigzag memory.

Reference code: thuml/predrnn-pytorch (``core/layers/SpatioTemporalLSTMCell*.py``). One ST-LSTM step
at layer l (``baselines-spec.md`` §3), all convs k x k and bias-free::

    i_x f_x g_x i'_x f'_x g'_x o_x = W_x * x      i_h f_h g_h o_h = W_h * h_{t-1}      i_m f_m g_m = W_m * m
    c_t = σ(f_x + f_h + 1) ⊙ c_{t-1} + σ(i_x + i_h) ⊙ tanh(g_x + g_h)            Δc = i ⊙ g
    m^l = σ(f'_x + f_m + 1) ⊙ m^{l-1} + σ(i'_x + i_m) ⊙ tanh(g'_x + g_m)         Δm = i' ⊙ g'
    o   = σ(o_x + o_h + W_o * [c_t, m^l]);    h_t = o ⊙ tanh(W_1x1 * [c_t, m^l])

The memory m zigzags: layer l reads m^{l-1}_t and layer 1 reads m^L_{t-1}. Parameters per layer:
16F²k² + 2F² for C_in = F.

PredRNN-V2 (``predrnn_v2``) adds the decoupling loss: a bias-free 1x1 conv W_d shared by all
layers and steps maps Δc and Δm; each is L2-normalised over space per channel, and
L_dec = mean |cos(W_d Δc, W_d Δm)| over steps, layers, batch and channels, weighted by β
(``decouple_beta``, 0.1). Its reverse scheduled sampling is the harness's ``train.sampling.kind:
reverse`` (set in ``configs/models/predrnn_v2.yaml``).

Deviations from the reference code: the shared codec instead of the patch reshape (``codec.kind:
patch`` restores it), no LayerNorm (every reference script runs with ``layer_norm 0``), and no
reversed-clip second optimiser step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.common import StackConfig, same_conv
from vpbench.interface.codecs import build_codec
from vpbench.interface.fusion import summed_conv
from vpbench.interface.predictor import Features, Geometry, Memory, RecurrentPredictor
from vpbench.interface.registry import model_builder


class STLSTMCell(nn.Module):
    """One ST-LSTM step: ``(x [B, C_in, h, w], h, c, m [B, F, h, w]) -> (h, c, m, Δc, Δm)``.

    ``highway`` (MotionRNN's motion highway V, ``[B, F, h, w]``) adds ``(1 - o) ⊙ V`` to h.
    ``fused``: the gates that add an x term to an h term, and those that add an x term to an m term,
    each as one conv over ``[x, h]`` and ``[x, m]`` (:func:`vpbench.interface.fusion.summed_conv`).
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.forget_bias, self.hidden, self.fused = forget_bias, hidden, False
        self.conv_x = same_conv(in_channels, 7 * hidden, kernel)
        self.conv_h = same_conv(hidden, 4 * hidden, kernel)
        self.conv_m = same_conv(hidden, 3 * hidden, kernel)
        self.conv_o = same_conv(2 * hidden, hidden, kernel)
        self.conv_last = nn.Conv2d(2 * hidden, hidden, 1, bias=False)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor,
                highway: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        i, f, g, o_xh, i_m, f_m, g_m = self._gates(x, h, m)  # 7 x [B, F, h, w]
        delta_c = torch.sigmoid(i) * torch.tanh(g)
        c = torch.sigmoid(f + self.forget_bias) * c + delta_c
        delta_m = torch.sigmoid(i_m) * torch.tanh(g_m)
        m = torch.sigmoid(f_m + self.forget_bias) * m + delta_m
        memory = torch.cat([c, m], dim=1)  # [B, 2F, h, w]
        o = torch.sigmoid(o_xh + self.conv_o(memory))
        h = o * torch.tanh(self.conv_last(memory))
        if highway is not None:
            h = h + (1 - o) * highway
        return h, c, m, delta_c, delta_m

    def _gates(self, x: Tensor, h: Tensor, m: Tensor) -> tuple[Tensor, ...]:
        """The pre-activations (i, f, g, o from x and h; i', f', g' from x and m), 7 x ``[B, F, h, w]``."""
        if self.fused:
            f, pad = self.hidden, self.conv_x.padding[0]
            w_x = self.conv_x.weight  # rows: i f g | i' f' g' | o
            hidden_gates = summed_conv([(x, torch.cat([w_x[:3 * f], w_x[6 * f:]])), (h, self.conv_h.weight)], pad)
            memory_gates = summed_conv([(x, w_x[3 * f:6 * f]), (m, self.conv_m.weight)], pad)
            return *torch.chunk(hidden_gates, 4, dim=1), *torch.chunk(memory_gates, 3, dim=1)
        i_x, f_x, g_x, i_xm, f_xm, g_xm, o_x = torch.chunk(self.conv_x(x), 7, dim=1)
        i_h, f_h, g_h, o_h = torch.chunk(self.conv_h(h), 4, dim=1)
        i_m, f_m, g_m = torch.chunk(self.conv_m(m), 3, dim=1)
        return i_x + i_h, f_x + f_h, g_x + g_h, o_x + o_h, i_xm + i_m, f_xm + f_m, g_xm + g_m


def decoupling_loss(adapter: nn.Conv2d, delta_c: Tensor, delta_m: Tensor) -> Tensor:
    """Mean |cosine| per channel between ``adapter(Δc)`` and ``adapter(Δm)``, ``[B, F, h, w]`` each -> scalar."""
    a = F.normalize(adapter(delta_c).flatten(2), dim=2)  # [B, F, h*w]
    b = F.normalize(adapter(delta_m).flatten(2), dim=2)
    return (a * b).sum(dim=2).abs().mean()


class PredRNNMemory(Memory):
    """L ST-LSTM cells with the zigzag memory. State: per layer (h, c), one m; ``[B, F, h, w]`` each."""

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, forget_bias: float = 1.0,
                 decouple_beta: float = 0.0):
        super().__init__()
        self.hidden, self.decouple_beta = hidden, decouple_beta
        self.cells = nn.ModuleList(
            STLSTMCell(in_channels if i == 0 else hidden, hidden, kernel, forget_bias) for i in range(layers)
        )
        self.adapter = nn.Conv2d(hidden, hidden, 1, bias=False) if decouple_beta > 0 else None

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.hidden, height, width)
        return {"h": [zero] * len(self.cells), "c": [zero] * len(self.cells), "m": zero, "decouple": None}

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        x, m = features.temporal, state["m"]
        hs, cs, decouple = [], [], []
        for layer, cell in enumerate(self.cells):
            h, c, m, delta_c, delta_m = cell(x, state["h"][layer], state["c"][layer], m)
            hs.append(h)
            cs.append(c)
            if self.adapter is not None and torch.is_grad_enabled():  # a training loss: not on the inference path
                decouple.append(decoupling_loss(self.adapter, delta_c, delta_m))
            x = h
        loss = torch.stack(decouple).mean() if decouple else None
        return Features.single(x), {"h": hs, "c": cs, "m": m, "decouple": loss}

    def auxiliary_loss(self, state: dict) -> Tensor | None:
        return None if state["decouple"] is None else self.decouple_beta * state["decouple"]


@dataclass
class PredRNNConfig(StackConfig):
    """PredRNN options; ``decouple_beta`` > 0 is PredRNN-V2."""

    forget_bias: float = 1.0
    decouple_beta: float = 0.0  # β of PredRNN-V2's decoupling loss (0.1 in its scripts); 0 = PredRNN


def _build(cfg: PredRNNConfig, geometry: Geometry) -> RecurrentPredictor:
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    memory = PredRNNMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, cfg.forget_bias,
                           cfg.decouple_beta)
    return RecurrentPredictor(codec, memory)


@model_builder(PredRNNConfig)
def build_predrnn(cfg: PredRNNConfig, geometry: Geometry) -> RecurrentPredictor:
    """PredRNN (Wang et al. 2017): ST-LSTM cells with a zigzag spatiotemporal memory."""
    return _build(cfg, geometry)


@model_builder(PredRNNConfig)
def build_predrnn_v2(cfg: PredRNNConfig, geometry: Geometry) -> RecurrentPredictor:
    """PredRNN-V2 (Wang et al. 2022): PredRNN + decoupling loss, trained with reverse scheduled sampling."""
    return _build(cfg, geometry)
