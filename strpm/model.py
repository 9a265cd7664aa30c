"""The STRPM predictor and its Table 3 ablations as one builder over switches (``strpm`` in the registry).

Rows of the paper's Table 3 are configs over this builder (``configs/models/rpm*.yaml``):
``sted: false`` puts the RPM stack on the shared single-stream codec; ``residual``, ``tau`` and
``theta`` are the other ablation switches; ``history_mode``, ``gate_mode``, ``stif_mode`` and
``readout_mode`` choose between the paper's equations (default) and the released code's behaviour
(``strpm-spec.md`` §3, §7; DESIGN §6). Training losses (MSE, + GAN, + LP) are the harness's
``train.loss``, not a model switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strpm.rpm import Mode, Norm, RPMMemory, RPMOptions
from strpm.sted import STEDCodec
from vpbench.interface.codecs import CodecConfig, build_codec
from vpbench.errors import GeometryError
from vpbench.interface.predictor import Geometry, RecurrentPredictor
from vpbench.interface.registry import model_builder


@dataclass
class STRPMConfig:
    """STRPM options; defaults are the paper's STRPM (16 x 128, 5x5, τ = θ = 5, STED, residual)."""

    hidden: int = 128  # F, channels of every state
    layers: int = 16  # L, stacked RPMs
    kernel: int = 5  # k of every conv_k (odd)
    tau: int = 5  # temporal states ATT_T merges (1: the previous state, no attention conv)
    theta: int = 5  # spatial states ATT_S merges (1: the previous state, no attention conv)
    residual: bool = True  # false: "RPM w/o residual", H = STRF
    sted: bool = True  # three encoders/decoders (STED); false: the shared single-stream codec
    history_mode: Mode = "paper"  # official: τ copies of T_{t-1} and the t = 0 padding bug
    gate_mode: Mode = "paper"  # official: input gate + forget-biased gate on the history
    stif_mode: Mode = "paper"  # official: 3F->F STIF conv over [T_E, S_E, R_O], owned by every layer
    readout_mode: Mode = "paper"  # official: Dec_O decodes the top layer's output gate instead of H^L
    norm: Norm = "layer_chw"  # layer_chw (released), group (resolution-free) or none
    codec: CodecConfig = field(default_factory=CodecConfig)  # sted = false only; geometry from the data

    def __post_init__(self):
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd size, got {self.kernel}")
        for key in ("hidden", "layers", "tau", "theta"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected >= 1, got {getattr(self, key)}")

    def check_geometry(self, geometry: Geometry) -> None:
        if self.sted and self.codec.kind != "conv":
            raise GeometryError("codec.kind: with sted: true STRPM builds its own STED codec; leave kind: conv")
        self.codec.check_geometry(geometry)

    def rpm_options(self) -> RPMOptions:
        return RPMOptions(self.tau, self.theta, self.residual, self.history_mode, self.gate_mode, self.stif_mode,
                          self.norm, self.readout_mode)


@model_builder(STRPMConfig)
def build_strpm(cfg: STRPMConfig, geometry: Geometry) -> RecurrentPredictor:
    """STRPM (Chang et al. 2022): Residual Predictive Memory stack, STED codec; ablation switches in the config."""
    cfg.check_geometry(geometry)
    if cfg.sted:
        patch, stride = cfg.codec.resolve(geometry)
        codec = STEDCodec(geometry.channels, cfg.hidden, patch, stride)
    else:
        codec = build_codec(cfg.codec, geometry, cfg.hidden)
        if codec.streams != 1:
            raise GeometryError(f"codec.kind: {cfg.codec.kind!r} gives three streams; for STRPM set sted: true instead")
    grid = codec.latent_size(geometry.height, geometry.width)
    memory = RPMMemory(codec.latent_channels, cfg.hidden, cfg.layers, cfg.kernel, grid, cfg.rpm_options(), cfg.sted)
    return RecurrentPredictor(codec, memory)
