"""STED, the spatiotemporal encoding-decoding scheme of STRPM (Chang et al., CVPR 2022, §3.1, eq. 1-4).

Three independent encoders and three independent decoders of the paper's family
(:class:`vpbench.interface.codecs.ConvEncoder` / :class:`~vpbench.interface.codecs.ConvDecoder`) around the memory::

    x = patch(v_t)                                   # [B, p²C, H/p, W/p]
    T_E, S_E, O_E = Enc_T(x), Enc_S(x), Enc_O(x)     # eq. 1, each [B, F, H/(p·sr), W/(p·sr)]
    T_D, S_D, O_D = Dec_T(T), Dec_S(S), Dec_O(O)     # eq. 3, each [B, p²C, H/p, W/p]
    x̂ = O_D ⊙ tanh(W_1x1 [T_D, S_D])                # eq. 4, unbounded (clipped only at evaluation)

``fused`` runs the three encoders (and the three decoders) as one stack of grouped convs
(:func:`vpbench.interface.fusion.parallel_stacks`).

What the decoders read (``strpm-spec.md`` §2): the top layer's temporal state, spatial state and
output stream, which is H^L or, under the released code's readout, the top layer's output gate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vpbench.interface.codecs import ConvDecoder, ConvEncoder, patch_reshape, patch_unreshape
from vpbench.interface.fusion import parallel_stacks
from vpbench.interface.predictor import Codec, Features, Geometry


class STEDCodec(Codec):
    """Three encoders, three decoders and the eq. 4 fusion.

    Shapes: encode ``[B, C, H, W]`` -> Features of three ``[B, F, H/(p·sr), W/(p·sr)]``; decode
    Features -> ``[B, C, H, W]``.
    """

    streams = 3

    def __init__(self, channels: int, hidden: int, patch: int, stride_ratio: int):
        super().__init__()
        self.patch, self.stride_ratio, self.fused = patch, stride_ratio, False
        self.frame_channels, self.latent_channels, self.hidden_channels = channels, hidden, hidden
        patched, steps = patch * patch * channels, int(math.log2(stride_ratio))
        self.encode_temporal = ConvEncoder(patched, hidden, steps)
        self.encode_spatial = ConvEncoder(patched, hidden, steps)
        self.encode_output = ConvEncoder(patched, hidden, steps)
        self.decode_temporal = ConvDecoder(hidden, patched, steps)
        self.decode_spatial = ConvDecoder(hidden, patched, steps)
        self.decode_output = ConvDecoder(hidden, patched, steps)
        self.fuse = nn.Conv2d(2 * patched, patched, 1)

    def encode(self, frame: Tensor) -> Features:
        x = patch_reshape(frame, self.patch)  # [B, p²C, H/p, W/p]
        if self.fused:
            encoders = [self.encode_temporal.net, self.encode_spatial.net, self.encode_output.net]
            return Features(*parallel_stacks(x, encoders, shared_input=True))
        return Features(self.encode_temporal(x), self.encode_spatial(x), self.encode_output(x))

    def decode(self, features: Features) -> Tensor:
        if self.fused:
            decoders = [self.decode_temporal.net, self.decode_spatial.net, self.decode_output.net]
            temporal, spatial, output = parallel_stacks(torch.cat(list(features), 1), decoders, shared_input=False)
        else:
            temporal = self.decode_temporal(features.temporal)  # [B, p²C, H/p, W/p]
            spatial = self.decode_spatial(features.spatial)
            output = self.decode_output(features.output)
        fused = output * torch.tanh(self.fuse(torch.cat([temporal, spatial], 1)))
        return patch_unreshape(fused, self.patch)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        factor = self.patch * self.stride_ratio
        return height // factor, width // factor


def build_sted_codec(geometry: Geometry, hidden: int, patch: int, stride_ratio: int) -> STEDCodec:
    """The ``sted`` entry of ``vpbench.interface.codecs``: any memory can run on STED (single-stream ones through an adapter)."""
    return STEDCodec(geometry.channels, hidden, patch, stride_ratio)
