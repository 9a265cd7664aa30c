"""SimVP (Gao et al., CVPR 2022) with the gated spatiotemporal attention translator of SimVP v2 (Tan et al.,
"SimVP: Towards Simple yet Powerful Spatiotemporal Predictive Learning", 2022): a non-recurrent model that
maps all T_in context frames to T_in future frames in one pass.

Written from the papers; OpenSTL's ``simvp_model.py`` / ``simvp_modules.py`` were read to match its
Moving MNIST configuration (hid_S 64, hid_T 512, N_S 4, N_T 8, 3x3 spatial kernels, MLP ratio 8), at
which its published counts are 46.8 M parameters and 16.5 G FLOPs (fvcore, i.e. MACs) per sample.

* **Spatial encoder** (per frame): N_S ``ConvSC`` blocks (3x3 conv -> GroupNorm(2) -> SiLU), strides
  1, 2, 1, 2, ...: ``[B·T, C, H, W]`` -> ``[B·T, S, H/2^(N_S/2), W/2^(N_S/2)]`` (S = hid_S); the first
  block's output is kept as a skip.
* **Translator** (all frames at once): the T latents stacked on channels, ``[B, T·S, h, w]``, through
  N_T ``MetaBlock`` s (the first maps T·S -> hid_T with a 1x1 conv after its block, the last back to T·S).
  A gSTA block is ``x + γ1·Attn(BN(x))`` then ``x + γ2·MLP(BN(x))``: the attention is large-kernel
  attention (1x1 -> GELU -> [5x5 depthwise -> 7x7 depthwise dilated 3 -> 1x1 to 2·D, split into
  f, g: σ(g)·f] -> 1x1, plus a shortcut), the MLP 1x1 (D -> 8D) -> 3x3 depthwise -> GELU -> 1x1;
  γ start at 0.01.
* **Spatial decoder** (per frame): N_S ``ConvSC`` blocks mirroring the encoder (up-sampling by a conv to
  4x the channels and a pixel shuffle), the skip added before the last, then a 1x1 readout.

Training (``configs/models/simvp.yaml``): MSE on the horizon only (``train.loss_on: horizon``), no
scheduled sampling. Horizons longer than T_in roll the model forward on its own last T_in outputs
(OpenSTL's protocol); shorter ones keep the first frames.

Deviation: the rollout's first T_in − 1 frames (the next-frame predictions the recurrent models make
inside the context) are the true context frames themselves; SimVP predicts no frame inside its context,
so a ``loss_on: clip`` run would get no signal from them.

Shapes (legend: B batch, T = T_in context frames, C channels, S = hid_S, h x w the latent grid):
context ``[B, T, C, H, W]`` -> rollout ``[B, T - 1 + horizon, C, H, W]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vpbench.errors import GeometryError
from vpbench.interface.predictor import Geometry, Predictor, check_rollout_inputs
from vpbench.interface.registry import model_builder


class ConvSC(nn.Module):
    """Conv (k x k, stride 1 or 2, or 1 followed by a 2x pixel shuffle) -> GroupNorm(2) -> SiLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int = 1, upsample: bool = False):
        super().__init__()
        if upsample:
            self.conv = nn.Sequential(nn.Conv2d(channels_in, channels_out * 4, kernel, 1, kernel // 2),
                                      nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(channels_in, channels_out, kernel, stride, (kernel - stride + 1) // 2)
        self.norm = nn.GroupNorm(2, channels_out)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


def _strides(blocks: int) -> list[int]:
    """1, 2, 1, 2, ... for ``blocks`` blocks: every second one halves the frame."""
    return [2 if i % 2 else 1 for i in range(blocks)]


class SpatialEncoder(nn.Module):
    """``[N, C, H, W]`` -> ``([N, S, h, w], skip [N, S, H, W])``."""

    def __init__(self, channels: int, hidden: int, blocks: int, kernel: int):
        super().__init__()
        strides = _strides(blocks)
        self.blocks = nn.ModuleList([ConvSC(channels if i == 0 else hidden, hidden, kernel, stride)
                                     for i, stride in enumerate(strides)])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = x = self.blocks[0](x)
        for block in self.blocks[1:]:
            x = block(x)
        return x, skip


class SpatialDecoder(nn.Module):
    """``([N, S, h, w], skip [N, S, H, W])`` -> ``[N, C, H, W]``."""

    def __init__(self, hidden: int, channels: int, blocks: int, kernel: int):
        super().__init__()
        ups = list(reversed(_strides(blocks)))  # 2, 1, 2, 1: up-sample where the encoder went down
        self.blocks = nn.ModuleList([ConvSC(hidden, hidden, kernel, upsample=up == 2) for up in ups])
        self.readout = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        for block in self.blocks[:-1]:
            x = block(x)
        return self.readout(self.blocks[-1](x + skip))


class DropPath(nn.Module):
    """Stochastic depth: while training, zero a sample's residual branch with probability p (rescaled)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p  # [N, 1, 1, 1]
        return x * keep / (1 - self.p)


class MixMlp(nn.Module):
    """1x1 (D -> hidden) -> 3x3 depthwise -> GELU -> 1x1 (hidden -> D)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


def large_kernel_convs(dim: int, kernel: int = 21, dilation: int = 3) -> tuple[nn.Conv2d, nn.Conv2d]:
    """A ``kernel`` x ``kernel`` depthwise receptive field as a small depthwise conv followed by a dilated one
    (for 21 and dilation 3: 5x5, then 7x7 with dilation 3)."""
    small = 2 * dilation - 1
    large = kernel // dilation + ((kernel // dilation) % 2 - 1)
    return (nn.Conv2d(dim, dim, small, padding=(small - 1) // 2, groups=dim),
            nn.Conv2d(dim, dim, large, padding=dilation * (large - 1) // 2, groups=dim, dilation=dilation))


class GatedAttention(nn.Module):
    """gSTA's gated large-kernel attention: ``[N, D, h, w]`` -> ``[N, D, h, w]``: σ(g) · f of the large-kernel
    features split in two."""

    def __init__(self, dim: int, kernel: int = 21):
        super().__init__()
        self.conv0, self.conv_spatial = large_kernel_convs(dim, kernel)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        f, g = self.conv1(self.conv_spatial(self.conv0(x))).chunk(2, dim=1)  # each [N, D, h, w]
        return torch.sigmoid(g) * f


class AttentionUnit(nn.Module):
    """1x1 -> GELU -> the gating unit -> 1x1, plus a shortcut."""

    def __init__(self, dim: int, gate: nn.Module):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.gate = gate
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_2(self.gate(self.activation(self.proj_1(x)))) + x


class SubBlock(nn.Module):
    """``x + γ1 · attention(BN(x))``, then ``x + γ2 · MLP(BN(x))``, with layer scales γ starting at 0.01."""

    def __init__(self, dim: int, attention: nn.Module, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm2d(dim), nn.BatchNorm2d(dim)
        self.attn = attention
        self.mlp = MixMlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


def gsta_block(dim: int, mlp_ratio: float, drop_path: float) -> SubBlock:
    """A gated spatiotemporal attention block (SimVP v2)."""
    return SubBlock(dim, AttentionUnit(dim, GatedAttention(dim)), mlp_ratio, drop_path)


class MetaBlock(nn.Module):
    """A translator block on ``channels_in``, then a 1x1 conv to ``channels_out`` where they differ."""

    def __init__(self, block: nn.Module, channels_in: int, channels_out: int):
        super().__init__()
        self.block = block
        self.reduction = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(self.block(x))


class Translator(nn.Module):
    """N_T blocks over the stacked latents: ``[B, T·S, h, w]`` -> hid_T -> ... -> ``[B, T·S, h, w]``.

    ``make_block(dim, drop_path)`` builds one block on ``dim`` channels; the stochastic depth rises
    linearly from 0.01 to ``drop_path`` (the last block gets ``drop_path``), as in SimVP v2.
    """

    def __init__(self, channels: int, hidden: int, blocks: int, make_block, drop_path: float):
        super().__init__()
        if blocks < 2:
            raise ValueError(f"Translator: blocks (N_T) must be at least 2, got {blocks}")
        rates = torch.linspace(1e-2, drop_path, blocks).tolist() if drop_path > 0 else [0.0] * blocks
        dims = [(channels, hidden)] + [(hidden, hidden)] * (blocks - 2) + [(hidden, channels)]
        self.blocks = nn.Sequential(*[MetaBlock(make_block(dim_in, rate), dim_in, dim_out)
                                      for (dim_in, dim_out), rate in zip(dims, rates)])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class SimVP(Predictor):
    """Encoder -> translator -> decoder over all T_in context frames at once (see the module docstring).

    ``translator_block(dim, drop_path)`` builds the translator's blocks: gSTA here, TAU in
    :mod:`baselines.tau`.
    """

    def __init__(self, geometry: Geometry, cfg: SimVPConfig, translator_block):
        super().__init__()
        self.context = geometry.context
        self.encoder = SpatialEncoder(geometry.channels, cfg.hid_S, cfg.N_S, cfg.spatio_kernel_enc)
        self.translator = Translator(geometry.context * cfg.hid_S, cfg.hid_T, cfg.N_T, translator_block, cfg.drop_path)
        self.decoder = SpatialDecoder(cfg.hid_S, geometry.channels, cfg.N_S, cfg.spatio_kernel_dec)

    def step(self, frames: Tensor) -> Tensor:
        """T_in frames -> the next T_in frames: ``[B, T, C, H, W]`` -> ``[B, T, C, H, W]``."""
        b, t, c, h, w = frames.shape
        latent, skip = self.encoder(frames.reshape(b * t, c, h, w))  # [B*T, S, h', w'], [B*T, S, H, W]
        _, s, lh, lw = latent.shape
        hidden = self.translator(latent.reshape(b, t * s, lh, lw))  # [B, T*S, h', w']
        return self.decoder(hidden.reshape(b * t, s, lh, lw), skip).reshape(b, t, c, h, w)

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        """``[B, T, C, H, W]`` -> ``[B, horizon, C, H, W]``: one pass, or passes on its own last T outputs."""
        outputs, frames, made = [], context, 0
        while made < horizon:
            frames = self.step(frames)
            outputs.append(frames)
            made += frames.shape[1]
        return torch.cat(outputs, dim=1)[:, :horizon]

    def rollout(self, context: Tensor, horizon: int, future: Tensor | None = None,
                teacher_forcing: float = 0.0, context_forcing: float = 1.0) -> Tensor:
        check_rollout_inputs(type(self).__name__, context, horizon, future)
        if context.shape[1] != self.context:
            raise ValueError(f"{type(self).__name__}: context: expected {self.context} frames (the translator is "
                             f"built for T_in), got {context.shape[1]}")
        return torch.cat([context[:, 1:], self.predict(context, horizon)], dim=1)  # [B, T - 1 + horizon, C, H, W]


@dataclass
class SimVPConfig:
    """SimVP's sizes (OpenSTL's names); the defaults are its Moving MNIST configuration."""

    hid_S: int = 64  # S: channels of the spatial encoder and decoder
    hid_T: int = 512  # channels inside the translator
    N_S: int = 4  # encoder (and decoder) blocks; every second one halves (doubles) the frame
    N_T: int = 8  # translator blocks
    spatio_kernel_enc: int = 3
    spatio_kernel_dec: int = 3
    mlp_ratio: float = 8.0  # the translator MLP's hidden width over its input width
    drop_path: float = 0.0  # stochastic depth of the last translator block (0: none, OpenSTL's MMNIST setting)

    def check_geometry(self, geometry: Geometry) -> None:
        factor = 2 ** (self.N_S // 2)
        if geometry.height % factor or geometry.width % factor:
            raise GeometryError(f"frame size {geometry.height}x{geometry.width} is not divisible by 2^(N_S // 2) = "
                                f"{factor} (model.N_S = {self.N_S})")


@model_builder(SimVPConfig)
def build_simvp(cfg: SimVPConfig, geometry: Geometry) -> SimVP:
    """SimVP with the gSTA translator (SimVP v2): non-recurrent, all context frames in one pass."""
    cfg.check_geometry(geometry)
    return SimVP(geometry, cfg, lambda dim, drop_path: gsta_block(dim, cfg.mlp_ratio, drop_path))
