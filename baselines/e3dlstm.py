"""E3D-LSTM (Wang et al., ICLR 2019): Eidetic 3D LSTM cells with recall attention over past cells.

Reference code: google/e3d_lstm (TF, ``src/layers/rnn_cell.py``) and OpenSTL's port. Each step reads
a window of the last τ_in = 2 encoded inputs, ``[B, C_in, τ_in, h, w]``; every state has that shape
and every gate conv is 3-D with a (2, k, k) kernel, padded causally in time. One step at layer l
(``baselines-spec.md`` §5), convs bias-free::

    i_x g_x r_x o_x i'_x g'_x f'_x = W_x * X     i_h g_h r_h o_h = W_h * h_{t-1}     i_m f_m g_m m_m = W_m * m^{l-1}
    RECALL(r, 𝒞) = softmax(r 𝒞ᵀ) 𝒞          # queries: the F-vectors of r at every (τ, y, x);
                                              # keys = values: every position of the last `history` cells 𝒞
    c_t = GroupNorm(c_{t-1} + RECALL(σ(r_x + r_h), 𝒞)) + σ(i_x + i_h) ⊙ tanh(g_x + g_h)
    m^l = σ(f'_x + f_m + 1) ⊙ tanh(m_m) + σ(i'_x + i_m) ⊙ tanh(g'_x + g_m)
    o   = σ(o_x + o_h + W_oc * c_t + W_om * m^l);    h_t = o ⊙ tanh(W_1x1x1 * [c_t, m^l])

A (τ_in, 1, 1) conv collapses the top layer's window into the ``[B, F, h, w]`` the codec decodes.
Parameters per layer: 17F²·2·k² + 2F² (x 7, h 4, m 4, W_oc, W_om; W_1x1x1 2F²).

Fixed by default, reproduced with ``published: true`` (``baselines-spec.md`` §5, §9):
the zigzag memory that never updates (the cell returned the incoming m: google/e3d_lstm#13, #1),
the doubly activated output gate tanh(mem) ⊙ σ(tanh(·)) (#17), and OpenSTL's attention reshape of
channel-first tensors without a permute, which mixes channels and positions into its "tokens".
Other choices: the recall window is capped at ``history`` past cells (the code's grows with t);
the normalisation is a resolution-free GroupNorm(1) (the TF code's per-channel LayerNorm).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.common import StackConfig
from vpbench.interface.codecs import build_codec
from vpbench.interface.predictor import Features, Geometry, Memory, RecurrentPredictor
from vpbench.interface.registry import model_builder


class CausalConv3d(nn.Conv3d):
    """A bias-free (k_t, k, k) conv that keeps the window length: time padded at the front only."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int]):
        super().__init__(in_channels, out_channels, kernel, padding=(0, kernel[1] // 2, kernel[2] // 2), bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (0, 0, 0, 0, self.kernel_size[0] - 1, 0)))


def summed_causal_conv(pairs: list[tuple[Tensor, Tensor]], padding: int) -> Tensor:
    """``Σ_i CausalConv3d_i(x_i)`` as one causal 3-D conv over the inputs concatenated on channels.

    ``pairs``: ``(x_i [B, C_i, τ, h, w], W_i [C_out, C_i, k_t, k, k])``, one k_t for all; returns
    ``[B, C_out, τ, h, w]``, front-padded in time as :class:`CausalConv3d`.
    """
    x = torch.cat([x for x, _ in pairs], dim=1)
    weight = torch.cat([w for _, w in pairs], dim=1)
    x = F.pad(x, (0, 0, 0, 0, weight.shape[2] - 1, 0))
    return F.conv3d(x, weight, padding=(0, padding, padding))


def recall(query: Tensor, history: list[Tensor], published: bool, fused: bool = False) -> Tensor:
    """Eidetic recall: attention of every position of ``query`` over every position of the past cells.

    ``query`` ``[B, F, τ, h, w]``, ``history`` n x ``[B, F, τ, h, w]`` -> ``[B, F, τ, h, w]``.
    ``fused`` computes the same unscaled softmax attention with ``scaled_dot_product_attention``
    (scale 1), which never holds the ``[τhw, n·τhw]`` weights in memory.
    """
    b, f, t, h, w = query.shape
    keys = torch.cat(history, dim=2)  # [B, F, n·τ, h, w]
    if published:  # OpenSTL: a reshape without permute; "tokens" are runs of F values of one channel
        q, k = query.reshape(b, -1, f), keys.reshape(b, -1, f)
        return torch.softmax(q @ k.transpose(1, 2), dim=-1).bmm(k).reshape(b, f, t, h, w)
    q = query.permute(0, 2, 3, 4, 1).reshape(b, t * h * w, f)  # [B, τhw, F]
    k = keys.permute(0, 2, 3, 4, 1).reshape(b, -1, f)  # [B, n·τhw, F]
    if fused:
        out = F.scaled_dot_product_attention(q, k, k, scale=1.0)
    else:
        out = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ k  # [B, τhw, F]
    return out.reshape(b, t, h, w, f).permute(0, 4, 1, 2, 3)


class E3DLSTMCell(nn.Module):
    """One E3D-LSTM step: ``(X [B, C_in, τ, h, w], h, c, m, history) -> (h, c, m)``, states ``[B, F, τ, h, w]``.

    ``fused``: the x and h terms (and the x and m terms, and W_oc and W_om) of one gate summed inside
    one causal conv (:func:`summed_causal_conv`), and the recall through
    ``scaled_dot_product_attention``.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: tuple[int, int, int], forget_bias: float,
                 published: bool):
        super().__init__()
        self.forget_bias, self.published, self.hidden, self.fused = forget_bias, published, hidden, False
        self.conv_x = CausalConv3d(in_channels, 7 * hidden, kernel)
        self.conv_h = CausalConv3d(hidden, 4 * hidden, kernel)
        self.conv_m = CausalConv3d(hidden, 4 * hidden, kernel)
        self.conv_oc = CausalConv3d(hidden, hidden, kernel)
        self.conv_om = CausalConv3d(hidden, hidden, kernel)
        self.conv_last = nn.Conv3d(2 * hidden, hidden, 1, bias=False)
        self.norm = nn.GroupNorm(1, hidden)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor,
                history: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        i, g, r, o, i_m, g_m, f_m, m_m = self._gates(x, h, m)  # 8 x [B, F, τ, h, w]
        recalled = recall(torch.sigmoid(r), history, self.published, self.fused)
        c_new = self.norm(c + recalled) + torch.sigmoid(i) * torch.tanh(g)
        m_new = torch.sigmoid(f_m + self.forget_bias) * torch.tanh(m_m) + torch.sigmoid(i_m) * torch.tanh(g_m)
        if self.fused:
            pad = self.conv_oc.padding[1]
            gate = o + summed_causal_conv([(c_new, self.conv_oc.weight), (m_new, self.conv_om.weight)], pad)
        else:
            gate = o + self.conv_oc(c_new) + self.conv_om(m_new)
        memory = self.conv_last(torch.cat([c_new, m_new], dim=1))
        if self.published:  # tanh(mem) ⊙ σ(tanh(gate)), and the incoming m is handed on unchanged
            return torch.tanh(memory) * torch.sigmoid(torch.tanh(gate)), c_new, m
        return torch.sigmoid(gate) * torch.tanh(memory), c_new, m_new

    def _gates(self, x: Tensor, h: Tensor, m: Tensor) -> tuple[Tensor, ...]:
        """Pre-activations i, g, r, o (x + h terms), i', g', f' (x + m terms) and m_m: 8 x ``[B, F, τ, h, w]``."""
        if self.fused:
            f, pad = self.hidden, self.conv_x.padding[1]
            w_x, w_m = self.conv_x.weight, self.conv_m.weight  # rows i g r o i' g' f' | i f g m
            hidden_gates = summed_causal_conv([(x, w_x[:4 * f]), (h, self.conv_h.weight)], pad)
            w_m_igf = torch.cat([w_m[:f], w_m[2 * f:3 * f], w_m[f:2 * f]])
            memory_gates = summed_causal_conv([(x, w_x[4 * f:]), (m, w_m_igf)], pad)
            m_m = summed_causal_conv([(m, w_m[3 * f:])], pad)
            return *torch.chunk(hidden_gates, 4, dim=1), *torch.chunk(memory_gates, 3, dim=1), m_m
        i_x, g_x, r_x, o_x, i_xm, g_xm, f_xm = torch.chunk(self.conv_x(x), 7, dim=1)
        i_h, g_h, r_h, o_h = torch.chunk(self.conv_h(h), 4, dim=1)
        i_m, f_m, g_m, m_m = torch.chunk(self.conv_m(m), 4, dim=1)
        return i_x + i_h, g_x + g_h, r_x + r_h, o_x + o_h, i_xm + i_m, g_xm + g_m, f_xm + f_m, m_m


class E3DLSTMMemory(Memory):
    """L E3D-LSTM cells on a sliding window of inputs, zigzag m, recall over ``history`` past cells.

    State: the window (τ_in x ``[B, C_in, h, w]``), per layer h, c and the past cells, one m; states
    are ``[B, F, τ_in, h, w]``. Output: the top h collapsed over the window, ``[B, F, h, w]``.
    """

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, window: int = 2,
                 temporal_kernel: int = 2, history: int = 5, forget_bias: float = 1.0, published: bool = False):
        super().__init__()
        self.in_channels, self.hidden, self.window, self.history = in_channels, hidden, window, history
        size = (temporal_kernel, kernel, kernel)
        self.cells = nn.ModuleList(
            E3DLSTMCell(in_channels if i == 0 else hidden, hidden, size, forget_bias, published) for i in range(layers)
        )
        self.collapse = nn.Conv3d(hidden, hidden, (window, 1, 1), bias=False)

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.hidden, self.window, height, width)
        layers = len(self.cells)
        return {"inputs": [self._zeros(batch, self.in_channels, height, width)] * self.window,
                "h": [zero] * layers, "c": [zero] * layers, "m": zero, "past": [[zero] for _ in range(layers)]}

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        inputs = state["inputs"][1:] + [features.temporal]
        x = torch.stack(inputs, dim=2)  # [B, C_in, τ_in, h, w]
        m = state["m"]
        hs, cs, pasts = [], [], []
        for layer, cell in enumerate(self.cells):
            h, c, m = cell(x, state["h"][layer], state["c"][layer], m, state["past"][layer])
            hs.append(h)
            cs.append(c)
            pasts.append((state["past"][layer] + [c])[-self.history:])
            x = h
        output = self.collapse(x).squeeze(2)  # [B, F, h, w]
        return Features.single(output), {"inputs": inputs, "h": hs, "c": cs, "m": m, "past": pasts}


@dataclass
class E3DLSTMConfig(StackConfig):
    """E3D-LSTM options."""

    window: int = 2  # τ_in, encoded inputs per step
    temporal_kernel: int = 2  # k_t of the (k_t, k, k) gate convs
    history: int = 5  # past cells the recall attends to (the published code keeps all of them)
    forget_bias: float = 1.0
    published: bool = False  # reproduce the published code's bugs (frozen m, σ(tanh) gate, unpermuted recall)

    def __post_init__(self):
        super().__post_init__()
        for key in ("window", "temporal_kernel", "history"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected >= 1, got {getattr(self, key)}")


@model_builder(E3DLSTMConfig)
def build_e3dlstm(cfg: E3DLSTMConfig, geometry: Geometry) -> RecurrentPredictor:
    """E3D-LSTM (Wang et al. 2019): 3D-conv LSTM cells with eidetic recall; published bugs fixed by default."""
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    memory = E3DLSTMMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, cfg.window,
                           cfg.temporal_kernel, cfg.history, cfg.forget_bias, cfg.published)
    return RecurrentPredictor(codec, memory)
