"""The Residual Predictive Memory (RPM) of STRPM (Chang et al., CVPR 2022, §3.2), as a vpbench Memory.

One RPM step at layer l and time t (``strpm-spec.md`` §3; every conv_k is a k x k conv with bias,
followed by the configured norm; 1x1 convs have no norm)::

    TF, SF, OF = conv_t(X_T), conv_s(X_S), conv_o(X_O)             # eq. 5; X = (T_E, S_E, O_E) at l = 1,
    HF, MF     = conv_h(H^l_{t-1}), conv_m(S^{l-1}_t)               #         H^{l-1}_t above
    A_T = ATT_T(𝒯) = conv_{τF->F}([T^l_{t-τ} .. T^l_{t-1}])         # τ = 1: A_T = T^l_{t-1}, no conv
    A_S = ATT_S(𝒮) = conv_{θF->F}(last θ spatial states, zigzag)    # θ = 1: A_S = S^{l-1}_t, no conv
    paper gates (eq. 6-8):    T = σ(TF+HF) ⊙ (tanh(TF+HF) + A_T),    S likewise with SF+MF, A_S
    official gates:           T = σ(TF+HF) ⊙ tanh(TF+HF) + σ(TF+HF+1) ⊙ A_T
    R_O  = σ(OF + HF + conv_{2F->F}([T, S]))                         # eq. 9
    STRF = R_O ⊙ tanh(conv1x1_{2F->F}([T, S]))
    STIF = X_T, except in layer 1 of the STED model: conv1x1([T_E, S_E]) (paper) or
           conv1x1([T_E, S_E, R_O]) (official: the gate overwrites O_E in the released code)
    H^l_t = STIF + STRF        (residual = False, "RPM w/o residual": H^l_t = STRF)

The spatial states zigzag as in PredRNN: S^0_t is S^L_{t-1}; 𝒮 is the last θ states in that order
(... S^L_{t-1}, S^1_t, ..., S^{l-1}_t). Histories start from zero states.

Switches that reproduce the released code (``strpm-spec.md`` §3.1, §7; DESIGN §6):

* ``history_mode``: ``paper`` keeps τ distinct temporal states per layer; ``official`` hands ATT_T τ
  copies of T^l_{t-1} (the released code's list aliasing) and builds 𝒮 with its padding index
  bug (:meth:`RPMMemory._official_window`): an all-zero 𝒮 at t = 0 for the first θ layers and,
  while fewer than θ spatial states exist (L < θ), zeros followed by the *oldest* states.
* ``gate_mode``: ``paper`` one residual gate (eq. 7-8); ``official`` an input gate and a
  forget-biased (+1) gate from the same pre-activation.
* ``stif_mode``: ``paper`` the 2F->F STIF conv of eq. 9 in layer 1 of the STED model;
  ``official`` the released cell, in which *every* layer owns a 3F->F STIF conv that only layer 1
  of the STED model runs. Those unused convs are in the released module list, so Table 3's
  parameter counts include them; in this mode they are dead weights here too, kept on purpose.
* ``norm``: ``layer_chw`` (LayerNorm over [F, h, w] with affine parameters, as released; its size
  depends on the latent grid), ``group`` (GroupNorm with one group: the same statistics, a
  resolution-free affine) or ``none``.

Shapes: features ``[B, F, h, w]`` (layer 1 may take C_in != F channels); state per layer
``H [B, F, h, w]``, temporal history ``τ x [B, F, h, w]``, one zigzag spatial history
``max(θ, 1) x [B, F, h, w]``. Legend: F hidden channels, L layers, h x w latent grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from vpbench.interface.fusion import grouped_conv, grouped_norm, shared_input_conv
from vpbench.interface.predictor import Features, Memory

Mode = Literal["paper", "official"]
Norm = Literal["layer_chw", "group", "none"]


@dataclass
class RPMOptions:
    """The switches of one RPM stack (see the module docstring)."""

    tau: int = 5
    theta: int = 5
    residual: bool = True
    history_mode: Mode = "paper"
    gate_mode: Mode = "paper"
    stif_mode: Mode = "paper"
    norm: Norm = "layer_chw"
    readout_mode: Mode = "paper"  # what the output stream carries: H^L (paper) or R_O^L (official)


class NormedConv(nn.Sequential):
    """A k x k conv (stride 1, same padding, bias) followed by the configured norm over ``[F, h, w]``.

    ``fused``: the LayerNorm through :func:`vpbench.interface.fusion.grouped_norm` (statistics spread over the
    device instead of one thread block per sample).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, norm: Norm, grid: tuple[int, int]):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)]
        if norm == "layer_chw":
            layers.append(nn.LayerNorm([out_channels, *grid]))
        elif norm == "group":
            layers.append(nn.GroupNorm(1, out_channels))
        super().__init__(*layers)
        self.fused = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fused and len(self) > 1:
            return grouped_norm(self[0](x), [self[1]])[0]
        return super().forward(x)


class RPMCell(nn.Module):
    """One RPM step (module docstring).

    ``stif_conv_inputs`` is the width of the STIF conv's input in units of F (0: no such conv, 2 or
    3); ``runs_stif_conv`` says whether this cell applies it (layer 1 of the STED model) or uses the
    identity skip.
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int, grid: tuple[int, int], options: RPMOptions,
                 stif_conv_inputs: int, runs_stif_conv: bool):
        super().__init__()
        self.options, self.runs_stif_conv, self.fused = options, runs_stif_conv, False

        def conv(cin: int) -> NormedConv:
            return NormedConv(cin, hidden, kernel, options.norm, grid)

        self.conv_t, self.conv_s, self.conv_o = conv(in_channels), conv(in_channels), conv(in_channels)
        self.conv_h, self.conv_m = conv(hidden), conv(hidden)
        self.attention_t = conv(options.tau * hidden) if options.tau > 1 else None
        self.attention_s = conv(options.theta * hidden) if options.theta > 1 else None
        self.conv_output = conv(2 * hidden)
        self.fuse = nn.Conv2d(2 * hidden, hidden, 1)
        self.stif = nn.Conv2d(stif_conv_inputs * hidden, hidden, 1) if stif_conv_inputs else None
        # an identity skip from features that are not F wide (PredRNN-style patches) needs a projection
        identity_skip = options.residual and not runs_stif_conv
        self.project = nn.Conv2d(in_channels, hidden, 1) if identity_skip and in_channels != hidden else None

    def _module(self, pre: Tensor, memory: Tensor) -> Tensor:
        """The temporal or spatial module: pre-activation ``TF + HF`` (or ``SF + MF``) and the merged history."""
        if self.options.gate_mode == "paper":
            return torch.sigmoid(pre) * (torch.tanh(pre) + memory)
        return torch.sigmoid(pre) * torch.tanh(pre) + torch.sigmoid(pre + 1.0) * memory

    def forward(self, inputs: Features, hidden: Tensor, spatial_below: Tensor, temporal_history: list[Tensor],
                spatial_history: list[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(H^l_t, T^l_t, S^l_t, R_O)``, each ``[B, F, h, w]``.

        ``temporal_history`` is the τ states ATT_T merges (oldest first), ``spatial_history`` the θ
        states ATT_S merges; ``spatial_below`` is S^{l-1}_t.
        """
        x_t, x_s, x_o = inputs
        if self.fused:
            tf, sf, of, hf, mf, merged_t, merged_s = self._fused_convs(inputs, hidden, spatial_below, temporal_history,
                                                                       spatial_history)
        else:
            tf, sf, of = self.conv_t(x_t), self.conv_s(x_s), self.conv_o(x_o)
            hf, mf = self.conv_h(hidden), self.conv_m(spatial_below)
            merged_t = self.attention_t(torch.cat(temporal_history, 1)) if self.attention_t else temporal_history[-1]
            merged_s = self.attention_s(torch.cat(spatial_history, 1)) if self.attention_s else spatial_history[-1]
        temporal = self._module(tf + hf, merged_t)
        spatial = self._module(sf + mf, merged_s)
        both = torch.cat([temporal, spatial], 1)  # [B, 2F, h, w]
        gate = torch.sigmoid(of + hf + self.conv_output(both))
        strf = gate * torch.tanh(self.fuse(both))
        if not self.options.residual:
            return strf, temporal, spatial, gate
        if self.runs_stif_conv:
            stif_inputs = [x_t, x_s] + ([gate] if self.options.stif_mode == "official" else [])
            stif = self.stif(torch.cat(stif_inputs, 1))
        else:
            stif = self.project(x_t) if self.project is not None else x_t
        return stif + strf, temporal, spatial, gate

    def _fused_convs(self, inputs: Features, hidden: Tensor, spatial_below: Tensor, temporal_history: list[Tensor],
                     spatial_history: list[Tensor]) -> tuple[Tensor, ...]:
        """TF, SF, OF, HF, MF and the merged histories with fewer, larger convs: 7 x ``[B, F, h, w]``.

        conv_t, conv_s and conv_o are one conv (concatenated outputs when the three streams are one
        tensor, as above layer 1 or on a single-stream codec; else grouped), conv_h and conv_m one
        grouped conv, and ATT_T and ATT_S one grouped conv when τ = θ > 1; their norms are applied
        per group (:func:`vpbench.interface.fusion.grouped_norm`).
        """
        x_t, x_s, x_o = inputs
        streams = [self.conv_t, self.conv_s, self.conv_o]
        if x_t is x_s and x_s is x_o:
            raw = shared_input_conv(x_t, [m[0] for m in streams])
        else:
            raw = grouped_conv(torch.cat([x_t, x_s, x_o], 1), [m[0] for m in streams])
        tf, sf, of = grouped_norm(raw, [_norm_of(m) for m in streams])
        recurrent = [self.conv_h, self.conv_m]
        raw = grouped_conv(torch.cat([hidden, spatial_below], 1), [m[0] for m in recurrent])
        hf, mf = grouped_norm(raw, [_norm_of(m) for m in recurrent])
        if self.attention_t is not None and self.attention_s is not None and self.options.tau == self.options.theta:
            attentions = [self.attention_t, self.attention_s]
            raw = grouped_conv(torch.cat(temporal_history + spatial_history, 1), [m[0] for m in attentions])
            merged_t, merged_s = grouped_norm(raw, [_norm_of(m) for m in attentions])
        else:
            merged_t = self.attention_t(torch.cat(temporal_history, 1)) if self.attention_t else temporal_history[-1]
            merged_s = self.attention_s(torch.cat(spatial_history, 1)) if self.attention_s else spatial_history[-1]
        return tf, sf, of, hf, mf, merged_t, merged_s


def _norm_of(block: NormedConv) -> nn.Module | None:
    return block[1] if len(block) > 1 else None


class RPMMemory(Memory):
    """L stacked RPM cells with the histories of the module docstring.

    ``sted`` says whether layer 1 receives three distinct encoder streams (the STED codec): only then
    does it run a STIF conv. Returns ``Features(T^L, S^L, O)`` with O = H^L, or the top layer's
    output gate R_O^L under ``readout_mode = official`` (what the released code decodes as O_P).
    """

    streams = 3

    def __init__(self, in_channels: int, hidden: int, layers: int, kernel: int, grid: tuple[int, int],
                 options: RPMOptions, sted: bool):
        super().__init__()
        if options.tau < 1 or options.theta < 1:
            raise ValueError(f"RPMMemory: tau and theta must be >= 1, got tau={options.tau}, theta={options.theta}")
        self.hidden, self.options, self.sted = hidden, options, sted

        def runs_stif_conv(layer: int) -> bool:
            return layer == 0 and sted and options.residual

        def stif_inputs(layer: int) -> int:
            if options.stif_mode == "official":
                return 3  # the released cell owns this conv in every layer
            return 2 if runs_stif_conv(layer) else 0

        self.cells = nn.ModuleList(
            RPMCell(in_channels if i == 0 else hidden, hidden, kernel, grid, options, stif_inputs(i), runs_stif_conv(i))
            for i in range(layers)
        )

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.hidden, height, width)
        depth = self.options.tau if self.options.history_mode == "paper" else 1
        return {
            "step": 0,
            "hidden": [zero] * len(self.cells),  # H^l_{t-1}
            "temporal": [[zero] * depth for _ in self.cells],  # the last τ (official: 1) T^l, oldest first
            "spatial": [zero] * self.options.theta,  # the last θ spatial states in zigzag order
            "zero": zero,
        }

    def _official_window(self, spatial: list[Tensor], step: int, layer: int, zero: Tensor) -> list[Tensor]:
        """𝒮 as the released code builds it (``core/models/STRPM.py``, the ``m_att`` loops).

        Its global list of spatial states holds ``n = 1 + t·L + l`` entries before layer l (0-based)
        at step t: the initial zero state, then every S in zigzag order. While ``n <= θ`` it pads
        with ``θ - (t + 1)`` zeros, counting the *temporal* list's length (t + 1), and takes the
        list's ``t + 1`` oldest entries; after that, the last θ entries (the paper's window). With
        L >= θ only t = 0 is affected (an all-zero window); with L < θ the first steps are too.
        """
        theta = self.options.theta
        held = 1 + step * len(self.cells) + layer
        if held > theta:
            return spatial[-theta:]
        oldest = spatial[-held:][:step + 1]  # the global list is the last `held` entries of the padded one
        return [zero] * (theta - step - 1) + oldest

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        opts = self.options
        inputs = features
        hidden_out, temporal_out, spatial = [], [], list(state["spatial"])
        for layer, cell in enumerate(self.cells):
            past = state["temporal"][layer]
            temporal_history = past if opts.history_mode == "paper" else [past[-1]] * opts.tau
            window = spatial[-opts.theta:]
            if opts.history_mode == "official":
                window = self._official_window(spatial, state["step"], layer, state["zero"])
            h, t, s, gate = cell(inputs, state["hidden"][layer], spatial[-1], temporal_history, window)
            hidden_out.append(h)
            temporal_out.append((past + [t])[-len(past):])
            spatial = (spatial + [s])[-opts.theta:]
            inputs = Features.single(h)
        output = gate if (self.sted and opts.readout_mode == "official") else hidden_out[-1]
        new_state = {"step": state["step"] + 1, "hidden": hidden_out, "temporal": temporal_out,
                     "spatial": spatial, "zero": state["zero"]}
        return Features(temporal_out[-1][-1], spatial[-1], output), new_state
