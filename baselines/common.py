"""What the baseline families share: the stack's config fields and the bias-free "same" conv."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from vpbench.interface.codecs import CodecConfig


@dataclass
class StackConfig:
    """A stack of L recurrent cells of F channels and k x k kernels on a codec (paper scale: 16 x 128, 5x5)."""

    hidden: int = 128  # F, channels of every state (and of the shared codec's features)
    layers: int = 16  # L
    kernel: int = 5  # k (odd)
    codec: CodecConfig = field(default_factory=CodecConfig)  # conv (shared), patch, or a registered one (sted)

    def __post_init__(self):
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd size, got {self.kernel}")
        for key in ("hidden", "layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected >= 1, got {getattr(self, key)}")


def same_conv(in_channels: int, out_channels: int, kernel: int, bias: bool = False) -> nn.Conv2d:
    """A stride-1 k x k conv that keeps the grid; bias-free by default, as the thuml cells are."""
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias)
