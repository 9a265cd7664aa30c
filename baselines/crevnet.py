"""CrevNet-style models (Yu et al., ICLR 2020): the conditionally reversible predictive module, on the
shared codec (``reversible_pm``, Table 3's "Reversible-PM") or on its own invertible autoencoder
(``crevnet``, Tables 1-2).

Reference code: gnosisyuw/CrevNet-Traffic4cast (``layers.py``, the official 2-D variant) and
OpenSTL 0.3's port of the 3-D MNIST code. One predictive layer (``baselines-spec.md`` §6) on the
latent halves (x1, x2), k x k convs with bias::

    i, f, g    = W_i, W_f, W_g * [x1, h_{t-1}, c_{t-1}]          c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    i', f', g' = W_i', W_f', W_g' * [x1, m, c_t]                  m   = σ(f') ⊙ m + σ(i') ⊙ tanh(g')
    o = σ(W_o * [x1, h_{t-1}, c_t, m]);   h_t = o ⊙ tanh(W_1x1 * [c_t, m]);   a = σ(W_a,1x1 * h_t)
    x2 <- (1 - a) ⊙ x2 + a ⊙ h_t;   (x1, x2) <- (x2, x1)

Given the recurrent state, each layer is an affine coupling (x2 = (x2' - a ⊙ h) / (1 - a)), so the
predictor is a bijection of the latent conditioned on its state. m zigzags through the layers and
on to the next step. Parameters per layer: 22C²k² + 3C² plus biases (C = half width).

The invertible two-way autoencoder of ``crevnet``: a lossless space-to-depth by 2, the channels split
into halves, then additive coupling blocks (x1, x2) -> (ψ(x2), ψ(x1) + F(x2)), where ψ is the identity
(stride 1) or another space-to-depth by 2 (stride 2) and F a small conv net; decode is the exact
inverse with the same weights. The latent holds exactly as many numbers as the frame.

Deviations: 2-D convs on single frames (the MNIST code used 3-D convs over 3-frame clips), GroupNorm
instead of BatchNorm in F (no batch dependence), zero initial states sized by the input (not a fixed
batch size), and teacher forcing only through the harness's scheduled sampling. On the shared codec
the latent is lifted by a 1x1 conv to 2C and projected back, so the information-preserving claim
holds for the predictor only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from baselines.common import StackConfig, same_conv
from vpbench.interface.codecs import build_codec, patch_reshape, patch_unreshape
from vpbench.errors import GeometryError
from vpbench.interface.fusion import shared_input_conv
from vpbench.interface.predictor import Codec, Features, Geometry, Memory, RecurrentPredictor
from vpbench.interface.registry import model_builder


class ReversibleLayer(nn.Module):
    """One conditionally reversible layer: ``(x1, x2, h, c, m)`` -> ``(x1', x2', h, c, m)``, all ``[B, C, h, w]``."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        c = channels
        self.fused = False  # the i, f, g convs of each memory (they read one input) as one conv
        self.conv_i, self.conv_f, self.conv_g = (same_conv(3 * c, c, kernel, bias=True) for _ in range(3))
        self.conv_i2, self.conv_f2, self.conv_g2 = (same_conv(3 * c, c, kernel, bias=True) for _ in range(3))
        self.conv_o = same_conv(4 * c, c, kernel, bias=True)
        self.conv_last = nn.Conv2d(2 * c, c, 1)
        self.attention = nn.Conv2d(c, c, 1)

    def forward(self, x1: Tensor, x2: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, ...]:
        i, f, g = self._gates(torch.cat([x1, h, c], dim=1), (self.conv_i, self.conv_f, self.conv_g))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        i, f, g = self._gates(torch.cat([x1, m, c], dim=1), (self.conv_i2, self.conv_f2, self.conv_g2))
        m = torch.sigmoid(f) * m + torch.sigmoid(i) * torch.tanh(g)
        o = torch.sigmoid(self.conv_o(torch.cat([x1, h, c, m], dim=1)))
        h = o * torch.tanh(self.conv_last(torch.cat([c, m], dim=1)))
        a = torch.sigmoid(self.attention(h))
        x2 = (1 - a) * x2 + a * h
        return x2, x1, h, c, m  # swapped halves

    def _gates(self, inputs: Tensor, convs: tuple[nn.Conv2d, ...]) -> tuple[Tensor, ...]:
        """The i, f, g pre-activations of ``inputs [B, 3C, h, w]``: 3 x ``[B, C, h, w]``."""
        if self.fused:
            return torch.chunk(shared_input_conv(inputs, list(convs)), 3, dim=1)
        return tuple(conv(inputs) for conv in convs)


class ReversibleMemory(Memory):
    """L reversible layers on the two halves of the latent.

    Features ``[B, C_in, h, w]``; when C_in != 2C a 1x1 conv lifts them to 2C and another projects the
    result back. State: per layer (h, c), one zigzag m, ``[B, C, h, w]`` each.
    """

    def __init__(self, in_channels: int, half: int, layers: int, kernel: int):
        super().__init__()
        self.half = half
        self.layers = nn.ModuleList(ReversibleLayer(half, kernel) for _ in range(layers))
        lifted = in_channels != 2 * half
        self.lift = nn.Conv2d(in_channels, 2 * half, 1) if lifted else nn.Identity()
        self.project = nn.Conv2d(2 * half, in_channels, 1) if lifted else nn.Identity()

    def init_state(self, batch: int, height: int, width: int) -> dict:
        zero = self._zeros(batch, self.half, height, width)
        return {"h": [zero] * len(self.layers), "c": [zero] * len(self.layers), "m": zero}

    def step(self, features: Features, state: dict) -> tuple[Features, dict]:
        x1, x2 = torch.chunk(self.lift(features.temporal), 2, dim=1)  # 2 x [B, C, h, w]
        m = state["m"]
        hs, cs = [], []
        for index, layer in enumerate(self.layers):
            x1, x2, h, c, m = layer(x1, x2, state["h"][index], state["c"][index], m)
            hs.append(h)
            cs.append(c)
        output = self.project(torch.cat([x1, x2], dim=1))
        return Features.single(output), {"h": hs, "c": cs, "m": m}


class CouplingBlock(nn.Module):
    """(x1, x2) -> (ψ(x2), ψ(x1) + F(x2)) and its exact inverse; ψ is space-to-depth by ``stride``.

    Halves ``[B, n, H, W]`` -> ``[B, n·s², H/s, W/s]``.
    """

    def __init__(self, channels: int, stride: int, width: int):
        super().__init__()
        self.stride = stride
        out = channels * stride * stride
        self.residual = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=stride, padding=1), nn.GroupNorm(1, width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(1, width), nn.ReLU(),
            nn.Conv2d(width, out, 3, padding=1),
        )

    def _psi(self, x: Tensor) -> Tensor:
        return patch_reshape(x, self.stride) if self.stride > 1 else x

    def _psi_inverse(self, x: Tensor) -> Tensor:
        return patch_unreshape(x, self.stride) if self.stride > 1 else x

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return self._psi(x2), self._psi(x1) + self.residual(x2)

    def inverse(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        x2 = self._psi_inverse(a)
        return self._psi_inverse(b - self.residual(x2)), x2


class InvertibleCodec(Codec):
    """CrevNet's two-way autoencoder: space-to-depth by 2, then coupling blocks down to ``H / factor``.

    Shapes: encode ``[B, C, H, W]`` -> Features of ``[B, C·factor², H/factor, W/factor]`` (the halves
    concatenated); decode is the exact inverse.
    """

    def __init__(self, channels: int, factor: int, blocks_per_stage: int, width_divisor: int):
        super().__init__()
        stages = int(math.log2(factor))  # one space-to-depth up front, stages - 1 stride-2 blocks
        self.frame_channels = channels
        self.latent_channels = self.hidden_channels = channels * factor * factor
        self.factor = factor
        blocks = []
        half = 2 * channels  # after the initial space-to-depth: 4C channels in two halves
        for stage in range(stages):
            for index in range(blocks_per_stage):
                stride = 2 if (stage > 0 and index == 0) else 1
                out = half * stride * stride
                blocks.append(CouplingBlock(half, stride, max(4, out // width_divisor)))
                half = out
        self.blocks = nn.ModuleList(blocks)

    def encode(self, frame: Tensor) -> Features:
        x1, x2 = torch.chunk(patch_reshape(frame, 2), 2, dim=1)
        for block in self.blocks:
            x1, x2 = block(x1, x2)
        return Features.single(torch.cat([x1, x2], dim=1))

    def decode(self, features: Features) -> Tensor:
        a, b = torch.chunk(features.output, 2, dim=1)
        for block in reversed(self.blocks):
            a, b = block.inverse(a, b)
        return patch_unreshape(torch.cat([a, b], dim=1), 2)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.factor, width // self.factor


@dataclass
class ReversiblePMConfig(StackConfig):
    """Reversible-PM on a shared codec: halves of ``half`` channels (None: F, lifted from the codec's F)."""

    half: int | None = None


@model_builder(ReversiblePMConfig)
def build_reversible_pm(cfg: ReversiblePMConfig, geometry: Geometry) -> RecurrentPredictor:
    """Reversible-PM (CrevNet's conditionally reversible predictive module) on the shared codec (Table 3)."""
    codec = build_codec(cfg.codec, geometry, cfg.hidden)
    if codec.hidden_channels != codec.latent_channels:
        raise GeometryError(f"codec.kind: {cfg.codec.kind!r} decodes {codec.hidden_channels} channels but encodes "
                            f"{codec.latent_channels}; the reversible module needs them equal (use kind: conv)")
    memory = ReversibleMemory(codec.latent_channels, cfg.half or cfg.hidden, cfg.layers, cfg.kernel)
    return RecurrentPredictor(codec, memory)


@dataclass
class AutoencoderConfig:
    """CrevNet's invertible autoencoder."""

    factor: int = 8  # spatial down-sampling, a power of two >= 2 (the latent grid is H/factor x W/factor)
    blocks_per_stage: int = 2  # coupling blocks per resolution
    width_divisor: int = 2  # F's width = its output channels / this ("mult" in the CrevNet code)


@dataclass
class CrevNetConfig:
    """The full CrevNet-style model: its own invertible autoencoder and L reversible layers (kernel 3 as in CrevNet)."""

    layers: int = 8  # the MNIST code's 8 layers
    kernel: int = 3
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)

    def __post_init__(self):
        factor = self.autoencoder.factor
        if factor < 2 or factor & (factor - 1):
            raise ValueError(f"autoencoder.factor: expected a power of two >= 2, got {factor}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd size, got {self.kernel}")

    def check_geometry(self, geometry: Geometry) -> None:
        factor = self.autoencoder.factor
        if geometry.height % factor or geometry.width % factor:
            raise GeometryError(f"frame size {geometry.height}x{geometry.width} is not divisible by "
                                f"autoencoder.factor = {factor}")


@model_builder(CrevNetConfig)
def build_crevnet(cfg: CrevNetConfig, geometry: Geometry) -> RecurrentPredictor:
    """CrevNet-style (Yu et al. 2020): invertible two-way autoencoder + conditionally reversible predictor."""
    cfg.check_geometry(geometry)
    ae = cfg.autoencoder
    codec = InvertibleCodec(geometry.channels, ae.factor, ae.blocks_per_stage, ae.width_divisor)
    memory = ReversibleMemory(codec.latent_channels, codec.latent_channels // 2, cfg.layers, cfg.kernel)
    return RecurrentPredictor(codec, memory)
