"""The shared encoders and decoders: "the same encoders" every memory of the paper runs on.

Two codecs, both single-stream (they hand the same features to the temporal, spatial and output
inputs of a memory):

* ``conv`` (the paper's family, ``strpm-spec.md`` §1-2): patch reshape by p (space-to-depth,
  exactly invertible), a 1x1 conv p²C -> F + ReLU, then log2(sr) x [3x3 conv stride 2 + ReLU]
  down to an ``H/(p·sr) x W/(p·sr)`` latent. The decoder mirrors it: (n-1) x [3x3 transposed conv
  stride 2 + ReLU], one more transposed conv without ReLU, a 1x1 conv F -> p²C, inverse patch.
* ``patch`` (PredRNN style): the patch reshape alone; the memory's first layer takes p²C channels
  and a bias-free 1x1 conv F -> p²C reads the frame out of the top layer.

The building blocks (:class:`ConvEncoder`, :class:`ConvDecoder`) are public so that STRPM's STED
codec can run three of each. Codecs that live in plug-in packages (STRPM's ``sted``) register a
builder ``(geometry, hidden, patch, stride_ratio) -> Codec`` under the ``vpbench.interface.codecs`` entry
points, so that every memory can run on every codec without vpbench or the baselines importing them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from torch import Tensor, nn

from vpbench.errors import GeometryError
from vpbench.interface.predictor import Codec, Features, Geometry


def patch_reshape(frame: Tensor, patch: int) -> Tensor:
    """Space-to-depth: ``[B, C, H, W]`` -> ``[B, p·p·C, H/p, W/p]``.

    Channels are ordered (row in patch, column in patch, colour), as in the PredRNN and STRPM code.
    """
    b, c, h, w = frame.shape
    x = frame.reshape(b, c, h // patch, patch, w // patch, patch)  # [B, C, H/p, p, W/p, p]
    x = x.permute(0, 3, 5, 1, 2, 4)  # [B, p, p, C, H/p, W/p]
    return x.reshape(b, patch * patch * c, h // patch, w // patch)


def patch_unreshape(patched: Tensor, patch: int) -> Tensor:
    """Depth-to-space, the exact inverse of :func:`patch_reshape`: ``[B, p·p·C, h, w]`` -> ``[B, C, h·p, w·p]``."""
    b, pc, h, w = patched.shape
    c = pc // (patch * patch)
    x = patched.reshape(b, patch, patch, c, h, w)  # [B, p, p, C, h, w]
    x = x.permute(0, 3, 4, 1, 5, 2)  # [B, C, h, p, w, p]
    return x.reshape(b, c, h * patch, w * patch)


@dataclass
class CodecConfig:
    """Which shared codec a recurrent model runs on. Its geometry comes from the data preset.

    ``patch`` and ``stride_ratio`` left unset (None) take ``data.patch`` and ``data.stride_ratio``,
    so every model on a data set shares one latent grid; set them only to depart from that.
    """

    kind: str = "conv"  # conv: the paper's family; patch: PredRNN-style; or a registered codec (sted)
    patch: int | None = None  # p, space-to-depth factor (None: the data preset's)
    stride_ratio: int | None = None  # sr, conv down-sampling, a power of two (None: the data preset's)

    def __post_init__(self):
        known = codec_names()
        if self.kind not in known:
            raise ValueError(f"kind: unknown codec {self.kind!r} (known: {', '.join(known)})")

    def resolve(self, geometry: Geometry) -> tuple[int, int]:
        """``(p, sr)`` for ``geometry``; sr is 1 for the patch codec."""
        patch = self.patch if self.patch is not None else geometry.patch
        stride = self.stride_ratio if self.stride_ratio is not None else geometry.stride_ratio
        return patch, (1 if self.kind == "patch" else stride)

    def check_geometry(self, geometry: Geometry) -> None:
        """Raise GeometryError unless H and W divide by the codec's down-sampling p·sr."""
        patch, stride = self.resolve(geometry)
        if patch < 1:
            raise GeometryError(f"codec.patch: expected >= 1, got {patch}")
        if stride < 1 or stride & (stride - 1):
            raise GeometryError(f"codec.stride_ratio: expected a power of two, got {stride}")
        factor = patch * stride
        if geometry.height % factor or geometry.width % factor:
            raise GeometryError(
                f"frame size {geometry.height}x{geometry.width} is not divisible by the codec's "
                f"p·sr = {patch}·{stride} = {factor} (codec.patch, codec.stride_ratio)"
            )


class ConvEncoder(nn.Module):
    """1x1 conv C_in -> F + ReLU, then ``downsamples`` x [3x3 conv stride 2 + ReLU].

    Shapes: ``[B, C_in, H', W']`` -> ``[B, F, H'/2^n, W'/2^n]``.
    """

    def __init__(self, in_channels: int, hidden: int, downsamples: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 1), nn.ReLU()]
        for _ in range(downsamples):
            layers += [nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """``upsamples`` x [3x3 transposed conv stride 2] (ReLU between, none after the last), 1x1 conv F -> C_out.

    Shapes: ``[B, F, h, w]`` -> ``[B, C_out, h·2^n, w·2^n]``.
    """

    def __init__(self, hidden: int, out_channels: int, upsamples: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(upsamples):
            layers.append(nn.ConvTranspose2d(hidden, hidden, 3, stride=2, padding=1, output_padding=1))
            if i < upsamples - 1:
                layers.append(nn.ReLU())
        layers.append(nn.Conv2d(hidden, out_channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvCodec(Codec):
    """The paper's single-stream codec: patch p, then conv down by sr (see module docstring).

    Shapes: encode ``[B, C, H, W]`` -> Features of ``[B, F, H/(p·sr), W/(p·sr)]``; decode reads
    ``features.output`` and returns ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, hidden: int, patch: int, stride_ratio: int):
        super().__init__()
        self.patch, self.stride_ratio = patch, stride_ratio
        self.frame_channels, self.latent_channels, self.hidden_channels = channels, hidden, hidden
        steps = int(math.log2(stride_ratio))
        self.encoder = ConvEncoder(patch * patch * channels, hidden, steps)
        self.decoder = ConvDecoder(hidden, patch * patch * channels, steps)

    def encode(self, frame: Tensor) -> Features:
        return Features.single(self.encoder(patch_reshape(frame, self.patch)))

    def decode(self, features: Features) -> Tensor:
        return patch_unreshape(self.decoder(features.output), self.patch)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        factor = self.patch * self.stride_ratio
        return height // factor, width // factor


class PatchCodec(Codec):
    """PredRNN-style codec: encode is the patch reshape alone; decode a bias-free 1x1 conv F -> p²C.

    Shapes: encode ``[B, C, H, W]`` -> Features of ``[B, p²C, H/p, W/p]``; decode reads
    ``features.output`` ``[B, F, H/p, W/p]`` -> ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, hidden: int, patch: int):
        super().__init__()
        self.patch = patch
        self.frame_channels, self.latent_channels, self.hidden_channels = channels, patch * patch * channels, hidden
        self.readout = nn.Conv2d(hidden, patch * patch * channels, 1, bias=False)

    def encode(self, frame: Tensor) -> Features:
        return Features.single(patch_reshape(frame, self.patch))

    def decode(self, features: Features) -> Tensor:
        return patch_unreshape(self.readout(features.output), self.patch)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch, width // self.patch


CODEC_GROUP = "vpbench.codecs"
BUILTIN_CODECS = ("conv", "patch")


@cache
def _registered_codecs() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=CODEC_GROUP)}


def codec_names() -> list[str]:
    """The built-in codecs and those registered by installed packages."""
    return [*BUILTIN_CODECS, *sorted(_registered_codecs())]


def build_codec(cfg: CodecConfig, geometry: Geometry, hidden: int) -> Codec:
    """The codec named by ``cfg`` for ``geometry``'s frames and F = ``hidden`` features."""
    cfg.check_geometry(geometry)
    patch, stride = cfg.resolve(geometry)
    if cfg.kind == "conv":
        return ConvCodec(geometry.channels, hidden, patch, stride)
    if cfg.kind == "patch":
        return PatchCodec(geometry.channels, hidden, patch)
    return _registered_codecs()[cfg.kind].load()(geometry, hidden, patch, stride)
