"""The run config schema: one dataclass per section, each field with its default, its range and a comment.

A range is declared beside its field with :func:`bounded` and checked by :func:`parse_section`,
which turns a plain mapping (merged YAML layers) into these dataclasses: an unknown key, a wrong
type, a value out of range or a non-finite float is a :class:`~vpbench.errors.ConfigError` that
carries the dotted key. Where a key's value came from (which file or layer) is the business of
:mod:`vpbench.config.resolution`, which resolves the layers; this module imports nothing of vpbench's but its
errors and the geometry type.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from vpbench.errors import ConfigError
from vpbench.interface.predictor import Geometry


def bounded(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None) -> Any:
    """A dataclass field whose value must be ``>= ge``, ``> gt`` and ``<= le`` (those given)."""
    return field(default=default, metadata={"ge": ge, "gt": gt, "le": le})


def added_later(default: Any) -> Any:
    """A field added after runs were stored: at ``default`` it changes nothing those runs did, so it enters
    the run id only when set to something else (:func:`vpbench.config.resolution.run_identity`), and the
    stored runs keep their ids."""
    return field(default=default, metadata={"identity": "when_set"})


# --------------------------------------------------------------------------- the sections


@dataclass
class MovingObjectsConfig:
    """The embedded procedural data: bouncing digits and textured sprites (``vpbench.data.moving_objects``)."""

    objects: int = bounded(2, ge=1)  # objects per clip
    kinds: list[str] = field(default_factory=lambda: ["digit", "sprite"])  # drawn uniformly per object
    size: float = bounded(0.4, gt=0, le=1)  # object height as a fraction of the frame's shorter side
    speed: float = bounded(0.06, ge=0, le=1)  # maximum speed, fraction of the frame's shorter side per frame
    background: Literal["black", "texture"] = "texture"  # plain black or a smooth procedural texture


@dataclass
class MovingDigitsConfig:
    """The Moving MNIST protocol (``vpbench.data.moving_digits``)."""

    digits: int = bounded(2, ge=1)  # digits per clip
    speed: float = bounded(0.1, ge=0, le=1)  # pixels per frame as a fraction of (H - size): Srivastava's step_length
    size: int = bounded(28, ge=8)  # side of a digit's canvas in pixels: MNIST's 28, or smaller for frames below 64x64


@dataclass
class DataConfig:
    """Which clips a run trains and tests on. Splits are disjoint by construction.

    ``source``: ``moving_objects`` and ``moving_digits`` are generated; ``footage`` decodes the
    package-shipped video ``name`` (bigbuckbunny, vtest) on first use; ``prepared`` opens the data set
    that ``vpbench data prepare --name NAME`` made; ``hub`` loads the Hugging Face data set ``name``.
    For footage, prepared and hub data the clip counts are upper bounds (the first N of each split).
    """

    source: str = "moving_objects"  # a registered data source (vpbench.data.sources): the five above or a plug-in
    name: str = ""  # footage: bigbuckbunny | vtest; prepared: the --name of `vpbench data prepare`; hub: repo id
    height: int = bounded(64, ge=1)  # H
    width: int = bounded(64, ge=1)  # W
    channels: Literal[1, 3] = 3  # C
    context: int = bounded(4, ge=1)  # T_in, frames the model sees
    horizon: int = bounded(4, ge=1)  # frames it predicts at test time
    patch: int = bounded(4, ge=1)  # p: space-to-depth factor of the shared codecs, the same for every model on this data
    stride_ratio: int = bounded(4, ge=1)  # sr: conv down-sampling after the patch; latent grid H/(p·sr) x W/(p·sr)
    train_clips: int = bounded(256, ge=1)
    val_clips: int = bounded(32, ge=1)  # model selection only
    test_clips: int = bounded(32, ge=1)  # reported metrics only
    seed: int = bounded(0, ge=0)  # data seed; the training seed is separate
    stride: int = bounded(1, ge=1)  # footage: keep every stride-th frame
    fit: Literal["resize", "crop", "pad"] = "crop"  # footage: how frames reach height x width (then Lanczos)
    moving_objects: MovingObjectsConfig = field(default_factory=MovingObjectsConfig)
    moving_digits: MovingDigitsConfig = field(default_factory=MovingDigitsConfig)

    def geometry(self) -> Geometry:
        return Geometry(self.channels, self.height, self.width, self.context, self.horizon,
                        self.patch, self.stride_ratio)


@dataclass
class SamplingConfig:
    """Scheduled sampling during training (``baselines-spec.md`` §1.4).

    ``thuml``: horizon steps see the true frame with probability eta, which starts at ``start``,
    falls by ``rate`` per iteration and is 0 from ``stop`` on. ``reverse``: PredRNN-V2's reverse
    schedule over ``reverse_start``/``reverse_stop`` with ``alpha``. ``none``: always the model's own
    predictions. ``teacher``: always the truth.
    """

    kind: Literal["thuml", "reverse", "none", "teacher"] = "thuml"
    start: float = bounded(1.0, ge=0, le=1)
    rate: float = bounded(2e-5, ge=0)
    stop: int = bounded(50_000, ge=0)
    reverse_start: int = bounded(25_000, ge=0)
    reverse_stop: int = bounded(50_000, ge=0)
    alpha: float = bounded(5000.0, gt=0)


@dataclass
class AdversarialConfig:
    """The discriminator and the weights of eq. 12 for ``loss: mse+gan`` and ``mse+gan+lp``."""

    lambda_lp: float = bounded(0.01, ge=0)  # λ1, LP loss (paper: 0.01 UCF Sports and Human3.6M, 0.005 SJTU4K)
    lambda_gan: float = bounded(0.001, ge=0)  # λ2, adversarial loss (paper: 0.001, SJTU4K 0.0005)
    lr: float = bounded(5e-5, gt=0)  # discriminator Adam learning rate (released code: a tenth of the predictor's)
    width: int = bounded(64, ge=4)  # discriminator channels D: 64 in the released code, 128 in the paper
    lp_layer: int = -1  # the block whose features L_LP compares; -1: the deepest (the paper's choice)
    score: Literal["sequence", "frame"] = "sequence"  # sequence: BCE of the clip's mean probability (code)

    def __post_init__(self):
        if self.width % 4:
            raise ValueError(f"width: expected a multiple of 4 (GroupNorm with 4 groups), got {self.width}")


@dataclass
class TrainConfig:
    """The training protocol, the same for every model."""

    steps: int = bounded(1000, ge=1)  # optimiser steps
    batch_size: int = bounded(8, ge=1)
    lr: float = bounded(5e-4, gt=0)  # Adam
    weight_decay: float = bounded(0.0, ge=0)
    schedule: Literal["constant", "exponential", "cosine"] = "constant"
    gamma: float = bounded(0.9, gt=0, le=1)  # exponential: lr *= gamma every decay_every steps from decay_start on
    decay_every: int = bounded(2000, ge=1)
    decay_start: int = bounded(0, ge=0)
    grad_clip: float = bounded(1.0, ge=0)  # max global grad norm; 0 turns clipping off
    amp: Literal["off", "bf16", "fp16"] = "off"  # autocast; fp16 adds a GradScaler (CUDA only)
    loss: Literal["mse", "mse+gan", "mse+gan+lp"] = "mse"  # Table 4's settings, for any predictor
    loss_on: Literal["clip", "horizon"] = "clip"  # clip: all T-1 next-frame predictions (paper code)
    val_every: int = bounded(100, ge=1)  # validate (and keep the best checkpoint) every N steps
    # what a validation measures, for best.pt and the plateau rule: the horizon's val MSE, or its val LPIPS
    # (AlexNet v0.1) for runs whose objective is perceptual (GAN, LP terms)
    val_metric: Literal["mse", "lpips"] = added_later("mse")
    patience: int = bounded(0, ge=0)  # a plateau: this many validations in a row without improvement; 0: none
    min_delta: float = bounded(0.0, ge=0, le=1)  # a validation improves only if it beats the best by this fraction
    lr_drops: int = bounded(0, ge=0)  # plateaus that cut the learning rate before the next one stops the run
    drop_factor: float = bounded(0.3, gt=0, le=1)  # the learning rate's multiplier at each of those plateaus
    val_clips: int = bounded(0, ge=0)  # validation clips used; 0 = the whole val split
    checkpoint_every: int = bounded(50, ge=1)  # write the resume checkpoint every N steps
    nonfinite_grad_steps: int = bounded(5, ge=1)  # fail after this many consecutive steps with inf/NaN gradients
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)


@dataclass
class EvalConfig:
    """The test loop."""

    batch_size: int = bounded(8, ge=1)
    lpips: bool = True  # compute LPIPS (AlexNet v0.1) where the backbone weights are available
    samples: int = bounded(2, ge=0)  # test sequences written as a PNG strip and a GIF
    fvd: Literal["none", "prediction", "context+prediction"] = "none"  # FVD (vpbench.measure.fvd): which frames enter
    fvd_clips: int = bounded(256, ge=2)  # FVD over the first N test clips (all of them when fewer)
    fvd_frames: int = bounded(16, ge=9)  # FVD pads a shorter clip to this many frames (its last frame repeated)


@dataclass
class ProfileConfig:
    """What the profiler measures for a run (:mod:`vpbench.measure.profiling`)."""

    flops: bool = True  # torch.utils.flop_counter on the meta device: whole sample and per step
    fvcore: bool = True  # fvcore as well: traces a real forward on the run's device
    latency: bool = True
    warmup: int = bounded(2, ge=0)  # untimed forwards before timing
    samples: int = bounded(10, ge=1)  # timed forwards per batch size (the paper's "inference time over 10 samples")
    throughput_batch: int = bounded(8, ge=0)  # a second timed batch size; 0 or 1 skips it
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False  # time torch.compile(model) instead of the eager model
    device: str = "auto"  # profile-only runs: the device timed (auto is fixed to a device before hashing)
    max_latency_gmacs: float = bounded(0.0, ge=0)  # skip timing a model whose sample costs more GMAC (0: never skip)


@dataclass
class RunConfig:
    """One fully resolved run. ``model`` is the model's own config, with its ``name``."""

    model: dict[str, Any]
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    task: Literal["train", "profile"] = "train"  # profile: measure the model at the data geometry, no training
    seed: int = bounded(0, ge=0)  # training seed (initialisation, batches, scheduled sampling)
    deterministic: bool = True  # torch.use_deterministic_algorithms and friends
    scale: str = "smoke"  # label only: the sizes above are what count
    sources: dict[str, str] = field(default_factory=dict)  # model/dataset/train config names used
    # below paper scale: {"model", "geometry"} of the same files and overrides resolved at paper scale
    # (the profile's paper-geometry counts describe it), or {"error"}; None at paper scale. Not in the run id.
    paper_counterpart: dict[str, Any] | None = None

    @property
    def model_name(self) -> str:
        return self.model["name"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


@dataclass
class RunScalars:
    """The top-level keys of a run that are not sections."""

    seed: int = bounded(0, ge=0)
    deterministic: bool = True
    task: Literal["train", "profile"] = "train"


# --------------------------------------------------------------------------- validation


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxset = 2, 4, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 60, 60, 40
SHOWN_CHARS = 200  # at most this much of a value in an error message

def shown(value: Any) -> str:
    """A bounded repr for an error message: nested and long values are cut (``...``), never expanded in full."""
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def nearest(name: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or nothing."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float, nested dataclasses)."""
    origin = typing.get_origin(tp)
    wrong = ConfigError(f"expected {_type_name(tp)}, got {shown(value)} ({type(value).__name__})", key)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping of {tp.__name__} keys, got {shown(value)} ({type(value).__name__})", key)
        return parse_section(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp) or isinstance(value, bool) != any(isinstance(a, bool) for a in typing.get_args(tp)):
            raise wrong
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            if option is not type(None):
                try:
                    return _convert(value, option, key)
                except ConfigError:
                    continue
        raise wrong
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise wrong
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_convert(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        if not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {shown(value)}", key)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    raise TypeError(f"{key}: unsupported annotation {tp!r}")


def _check_range(value: Any, meta: typing.Mapping[str, Any], key: str) -> None:
    ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
    if (ge is not None and value < ge) or (gt is not None and value <= gt) or (le is not None and value > le):
        bounds = [f">= {ge:g}" if ge is not None else "", f"> {gt:g}" if gt is not None else "",
                  f"<= {le:g}" if le is not None else ""]
        raise ConfigError(f"expected {' and '.join(b for b in bounds if b)}, got {shown(value)}", key)


def parse_section(cls: type, mapping: dict[str, Any], prefix: str = "") -> Any:
    """Validate ``mapping`` into the dataclass ``cls``; a ConfigError names the dotted key at fault."""
    def dotted(key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    if not isinstance(mapping, dict):
        raise ConfigError(f"expected a mapping, got {shown(mapping)} ({type(mapping).__name__})", prefix or None)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in mapping:
        if key not in fields:
            raise ConfigError(f"unknown key{nearest(str(key), list(fields))}", dotted(str(key)))
    kwargs = {}
    for key, value in mapping.items():
        kwargs[key] = _convert(value, hints[key], dotted(key))
        _check_range(kwargs[key], fields[key].metadata, dotted(key))
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a __post_init__ check, worded "key: expected ..., got ..."
        key, sep, detail = str(exc).partition(": ")
        raise ConfigError(detail, dotted(key)) if sep else ConfigError(str(exc), prefix or None) from None
