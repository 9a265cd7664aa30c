"""PredRNN++ (Wang et al., ICML 2018): Causal LSTM cells and a Gradient Highway Unit.

Reference code: Yunbo426/predrnn-pp (TF, ``layers/CausalLSTMCell.py``, ``GradientHighwayUnit.py``)
and OpenSTL's PyTorch port. One Causal LSTM step (``baselines-spec.md`` §4), all convs k x k, bias-free::

    i_x g_x f_x o_x i'_x g'_x f'_x = W_x * x       i_h g_h f_h o_h = W_h * h_{t-1}
    i_c g_c f_c = W_c * c_{t-1}                      i_m f_m m_m = W_m * m^{l-1}
    c_t = σ(f_x + f_h + f_c + 1) ⊙ c_{t-1} + σ(i_x + i_h + i_c) ⊙ tanh(g_x + g_h + g_c)
    î ĝ f̂ ô = W_c2m * c_t                                              (the causal cascade c -> m)
    m^l = σ(f'_x + f_m + f̂ + 1) ⊙ tanh(m_m) + σ(i'_x + i_m + î) ⊙ tanh(g'_x + ĝ)
    o   = tanh(o_x + o_h + ô + W_om * m^l);    h_t = o ⊙ tanh(W_1x1 * [c_t, m^l])

The GHU between layers 1 and 2: p = tanh(W_px * h¹ + W_pz * z), u = σ(W_ux * h¹ + W_uz * z),
z_t = u ⊙ p + (1 - u) ⊙ z_{t-1}; layer 2 reads z_t. m zigzags as in PredRNN.

Parameters per layer 22F²k² + 2F², the GHU 4F²k² once. Deviations: the shared codec instead of
patches; no LayerNorm; none of OpenSTL's unused ``conv_o`` (+2F²k² per layer in its counts); W_c
reads c_{t-1} as in the TF original (OpenSTL's pre-2023 code applied it to m, OpenSTL#68).
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


class CausalLSTMCell(nn.Module):
    """One Causal LSTM step: ``(x [B, C_in, h, w], h, c, m [B, F, h, w]) -> (h, c, m)``."""

    def __init__(self, in_channels: int, hidden: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.forget_bias, self.hidden, self.fused = forget_bias, hidden, False
        self.conv_x = same_conv(in_channels, 7 * hidden, kernel)
        self.conv_h = same_conv(hidden, 4 * hidden, kernel)
        self.conv_c = same_conv(hidden, 3 * hidden, kernel)
        self.conv_m = same_conv(hidden, 3 * hidden, kernel)
        self.conv_c2m = same_conv(hidden, 4 * hidden, kernel)
        self.conv_om = same_conv(hidden, hidden, kernel)
        self.conv_last = nn.Conv2d(2 * hidden, hidden, 1, bias=False)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        i, g, f, o_xh, i_xm, g_xm, f_xm = self._input_gates(x, h, c)  # 7 x [B, F, h, w]
        i_m, f_m, m_m = torch.chunk(self.conv_m(m), 3, dim=1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        i_cm, g_cm, f_cm, o_cm = torch.chunk(self.conv_c2m(c), 4, dim=1)
        m = torch.sigmoid(f_xm + f_m + f_cm + self.forget_bias) * torch.tanh(m_m) + \
            torch.sigmoid(i_xm + i_m + i_cm) * torch.tanh(g_xm + g_cm)
        o = torch.tanh(o_xh + o_cm + self.conv_om(m))
        h = o * torch.tanh(self.conv_last(torch.cat([c, m], dim=1)))
        return h, c, m

    def _input_gates(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, ...]:
        """i, g, f (x + h + c terms), o (x + h) and the x terms of i', g', f': 7 x ``[B, F, h, w]``.

        ``fused``: the h and c convs as one conv over ``[h, c]``, with zero c weights for o (F²k²
        extra multiply-adds per step, one conv and three additions fewer).
        """
        i_x, g_x, f_x, o_x, i_xm, g_xm, f_xm = torch.chunk(self.conv_x(x), 7, dim=1)
        if self.fused:
            w_c = self.conv_c.weight  # rows i g f
            w_c = torch.cat([w_c, w_c.new_zeros(self.hidden, *w_c.shape[1:])])
            i_hc, g_hc, f_hc, o_h = torch.chunk(
                summed_conv([(h, self.conv_h.weight), (c, w_c)], self.conv_h.padding[0]), 4, dim=1)
            return i_x + i_hc, g_x + g_hc, f_x + f_hc, o_x + o_h, i_xm, g_xm, f_xm
        i_h, g_h, f_h, o_h = torch.chunk(self.conv_h(h), 4, dim=1)
        i_c, g_c, f_c = torch.chunk(self.conv_c(c), 3, dim=1)
        return i_x + i_h + i_c, g_x + g_h + g_c, f_x + f_h + f_c, o_x + o_h, i_xm, g_xm, f_xm


class GradientHighwayUnit(nn.Module):
    """``(x [B, F, h, w], z [B, F, h, w]) -> z``: a gated highway that carries layer 1 to layer 2."""

    def __init__(self, hidden: int, kernel: int):
        super().__init__()
        self.fused = False  # W_x * x + W_z * z as one conv over [x, z]
        self.conv_x = same_conv(hidden, 2 * hidden, kernel)
        self.conv_z = same_conv(hidden, 2 * hidden, kernel)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        if self.fused:
            gates = summed_conv([(x, self.conv_x.weight), (z, self.conv_z.weight)], self.conv_x.padding[0])
        else:
            gates = self.conv_x(x) + self.conv_z(z)
        p, u = torch.chunk(gates, 2, dim=1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


class PredRNNppMemory(Memory):
    """L Causal LSTM cells, the GHU after layer 1 (when L > 1), zigzag m.

    State: per layer (h, c), one m, the GHU's z; ``[B, F, h, w]`` each.
    """

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, forget_bias: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.cells = nn.ModuleList(
            CausalLSTMCell(in_channels if i == 0 else hidden, hidden, kernel, forget_bias) for i in range(layers)
        )
        self.highway = GradientHighwayUnit(hidden, kernel) if layers > 1 else None

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.hidden, height, width)
        return {"h": [zero] * len(self.cells), "c": [zero] * len(self.cells), "m": zero, "z": zero}

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        x, m, z = features.temporal, state["m"], state["z"]
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            h, c, m = cell(x, state["h"][layer], state["c"][layer], m)
            hs.append(h)
            cs.append(c)
            x = h
            if layer == 0 and self.highway is not None:
                z = self.highway(h, z)
                x = z
        return Features.single(x), {"h": hs, "c": cs, "m": m, "z": z}


@dataclass
class PredRNNppConfig(StackConfig):
    """PredRNN++ options."""

    forget_bias: float = 1.0


@model_builder(PredRNNppConfig)
def build_predrnnpp(cfg: PredRNNppConfig, geometry: Geometry) -> RecurrentPredictor:
    """PredRNN++ (Wang et al. 2018): Causal LSTM cells with a Gradient Highway Unit (Table 3's Causal-LSTM)."""
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    memory = PredRNNppMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, cfg.forget_bias)
    return RecurrentPredictor(codec, memory)
