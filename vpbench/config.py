"""YAML -> typed, validated run configs; dotted overrides; the content hash that names a run.

A run is resolved from layers, later ones winning:

1. the dataclass defaults below;
2. ``configs/train/<train>.yaml``, ``configs/datasets/<dataset>.yaml``, ``configs/models/<model>.yaml``
   (each file's body, then its ``scales: {<scale>: ...}`` section; ``_base_: other.yaml`` inherits);
3. the run's own overrides (a ``--config`` file's body, a suite's ``set:``);
4. ``--set a.b=c`` on the command line.

Every key remembers the layer that set it, so an unknown key or a wrong type is reported as
``FILE: dotted.key: ...`` with the nearest known key. The model section is validated by the config
class its builder declares (:mod:`vpbench.registry`); vpbench itself knows no model.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vpbench import __version__
from vpbench.errors import ConfigError, GeometryError, VpbenchError
from vpbench.predictor import Geometry

SCALES = ("smoke", "small", "paper")
FILE_SECTIONS = ("model", "data", "train", "eval", "profile", "task", "seed", "deterministic")


# --------------------------------------------------------------------------- the schema


@dataclass
class MovingObjectsConfig:
    """The embedded procedural data: bouncing digits and textured sprites (``vpbench.data.moving_objects``)."""

    objects: int = 2  # objects per clip
    kinds: list[str] = field(default_factory=lambda: ["digit", "sprite"])  # drawn uniformly per object
    size: float = 0.4  # object height as a fraction of the frame's shorter side
    speed: float = 0.06  # maximum speed, fraction of the frame's shorter side per frame
    background: Literal["black", "texture"] = "texture"  # plain black or a smooth procedural texture


@dataclass
class DataConfig:
    """Which clips a run trains and tests on. Splits are disjoint by construction."""

    source: Literal["moving_objects"] = "moving_objects"  # the generator or prepared data set
    height: int = 64  # H
    width: int = 64  # W
    channels: Literal[1, 3] = 3  # C
    context: int = 4  # T_in, frames the model sees
    horizon: int = 4  # frames it predicts at test time
    patch: int = 4  # p: space-to-depth factor of the shared codecs, the same for every model on this data
    stride_ratio: int = 4  # sr: conv down-sampling after the patch; the latent grid is H/(p·sr) x W/(p·sr)
    train_clips: int = 256
    val_clips: int = 32  # model selection only
    test_clips: int = 32  # reported metrics only
    seed: int = 0  # data seed; the training seed is separate
    moving_objects: MovingObjectsConfig = field(default_factory=MovingObjectsConfig)

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
    start: float = 1.0
    rate: float = 2e-5
    stop: int = 50_000
    reverse_start: int = 25_000
    reverse_stop: int = 50_000
    alpha: float = 5000.0


@dataclass
class AdversarialConfig:
    """The discriminator and the weights of eq. 12 for ``loss: mse+gan`` and ``mse+gan+lp``."""

    lambda_lp: float = 0.01  # λ1, LP loss (paper: 0.01 UCF Sports and Human3.6M, 0.005 SJTU4K)
    lambda_gan: float = 0.001  # λ2, adversarial loss (paper: 0.001, SJTU4K 0.0005)
    lr: float = 5e-5  # discriminator Adam learning rate (released code: a tenth of the predictor's)
    width: int = 64  # discriminator channels D: 64 in the released code, 128 in the paper
    lp_layer: int = -1  # the block whose features L_LP compares; -1: the deepest (the paper's choice)
    score: Literal["sequence", "frame"] = "sequence"  # sequence: BCE of the clip's mean probability (code)

    def __post_init__(self):
        if self.width < 4 or self.width % 4:
            raise ValueError(f"width: expected a multiple of 4 (GroupNorm with 4 groups), got {self.width}")


@dataclass
class TrainConfig:
    """The training protocol, the same for every model."""

    steps: int = 1000  # optimiser steps
    batch_size: int = 8
    lr: float = 5e-4  # Adam
    weight_decay: float = 0.0
    schedule: Literal["constant", "exponential", "cosine"] = "constant"
    gamma: float = 0.9  # exponential: lr *= gamma every decay_every steps from decay_start on
    decay_every: int = 2000
    decay_start: int = 0
    grad_clip: float = 1.0  # max global grad norm; 0 turns clipping off
    amp: Literal["off", "bf16", "fp16"] = "off"  # autocast; fp16 adds a GradScaler (CUDA only)
    loss: Literal["mse", "mse+gan", "mse+gan+lp"] = "mse"  # Table 4's settings, for any predictor
    loss_on: Literal["clip", "horizon"] = "clip"  # clip: all T-1 next-frame predictions (paper code)
    val_every: int = 100  # validate (and keep the best checkpoint) every N steps
    val_clips: int = 0  # validation clips used; 0 = the whole val split
    checkpoint_every: int = 50  # write the resume checkpoint every N steps
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)


@dataclass
class EvalConfig:
    """The test loop."""

    batch_size: int = 8
    lpips: bool = True  # compute LPIPS (AlexNet v0.1) where the backbone weights are available
    samples: int = 2  # test sequences written as a PNG strip and a GIF


@dataclass
class ProfileConfig:
    """What the profiler measures for a run (:mod:`vpbench.profiling`)."""

    flops: bool = True  # torch.utils.flop_counter on the meta device: whole sample and per step
    fvcore: bool = True  # fvcore as well: traces a real forward on the run's device
    latency: bool = True
    warmup: int = 2  # untimed forwards before timing
    samples: int = 10  # timed forwards per batch size (the paper's "inference time over 10 samples")
    throughput_batch: int = 8  # a second timed batch size; 0 or 1 skips it
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False  # time torch.compile(model) instead of the eager model
    device: str = "auto"  # profile-only runs: the device timed (auto is fixed to a device before hashing)
    max_latency_gmacs: float = 0.0  # skip timing a model whose sample costs more GMAC than this (0: never skip)

    def __post_init__(self):
        if self.samples < 1 or self.warmup < 0:
            raise ValueError(f"samples/warmup: expected >= 1 / >= 0, got {self.samples}/{self.warmup}")


@dataclass
class RunConfig:
    """One fully resolved run. ``model`` is the model's own config, with its ``name``."""

    model: dict[str, Any]
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    task: Literal["train", "profile"] = "train"  # profile: measure the model at the data geometry, no training
    seed: int = 0  # training seed (initialisation, batches, scheduled sampling)
    deterministic: bool = True  # torch.use_deterministic_algorithms and friends
    scale: str = "smoke"  # label only: the sizes above are what count
    sources: dict[str, str] = field(default_factory=dict)  # model/dataset/train config names used

    @property
    def model_name(self) -> str:
        return self.model["name"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What names the run: the resolved values, the package version, the data fingerprint."""
        from vpbench.data import fingerprint

        body = self.to_dict()
        body.pop("scale")
        body.pop("sources")
        return {"config": body, "vpbench": __version__, "data": fingerprint(self.data)}

    def run_id(self) -> str:
        """A stable content hash (16 hex digits) of :meth:`identity`."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------- files and layers


def configs_root() -> Path:
    """``$VPBENCH_CONFIGS``, else ``./configs``, else the ``configs/`` beside the installed sources."""
    env = os.environ.get("VPBENCH_CONFIGS")
    if env:
        return Path(env)
    local = Path.cwd() / "configs"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent.parent / "configs"


def find_config(kind: str, name: str) -> Path:
    """``configs/<kind>/<name>.yaml``, or ``name`` itself when it is a path to a file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = configs_root() / kind / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (configs_root() / kind).glob("*.yaml"))
        hint = _nearest(name, known)
        raise ConfigError(f"{kind} config not found: {path}{hint} (known: {', '.join(known) or 'none'})")
    return path


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping with its ``_base_`` files merged under it (paths relative to the file)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        body = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(body).__name__}")
    bases = body.pop("_base_", [])
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merge_into(merged, load_yaml((path.parent / base).resolve()))
    merge_into(merged, body)
    return merged


def merge_into(base: dict, layer: dict, source: str | None = None,
               provenance: dict[str, str] | None = None, prefix: str = "") -> dict:
    """Deep-merge ``layer`` into ``base`` in place, recording ``source`` for every key it sets."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value, source, provenance, dotted + ".")
            continue
        base[key] = copy.deepcopy(value)
        if provenance is not None and source is not None:
            for sub in _dotted_keys(value, dotted):
                provenance[sub] = source
    return base


def _dotted_keys(value: Any, dotted: str) -> list[str]:
    if isinstance(value, dict):
        keys = [dotted]
        for k, v in value.items():
            keys += _dotted_keys(v, f"{dotted}.{k}")
        return keys
    return [dotted]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values are parsed as YAML scalars."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=100")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class Layer:
    """One source of config values: a mapping and the name errors should point at."""

    body: dict[str, Any]
    source: str


def file_layers(path: Path, scale: str) -> list[Layer]:
    """A config file's body, then its ``scales.<scale>`` section."""
    body = load_yaml(path)
    scales = body.pop("scales", {}) or {}
    if not isinstance(scales, dict) or set(scales) - set(SCALES):
        unknown = sorted(set(scales) - set(SCALES)) if isinstance(scales, dict) else scales
        raise ConfigError(f"{path}: scales: unknown scale {unknown} (known: {', '.join(SCALES)})")
    layers = [Layer(body, str(path))]
    if scales.get(scale):
        layers.append(Layer(scales[scale], f"{path} (scales.{scale})"))
    return layers


# --------------------------------------------------------------------------- validation


def _nearest(name: str, known: list[str]) -> str:
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


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float, nested dataclasses)."""
    origin = typing.get_origin(tp)
    wrong = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong
        return _parse(tp, value, where)
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
                    return _convert(value, option, where)
                except ConfigError:
                    continue
        raise wrong
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise wrong
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
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
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    raise TypeError(f"{where}: unsupported annotation {tp!r}")


def _parse(cls: type, mapping: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    def dotted(key: str) -> str:
        return f"{where}.{key}" if where else key

    for key in mapping:
        if key not in names:
            raise ConfigError(f"{dotted(key)}: unknown key{_nearest(str(key), names)}")
    kwargs = {key: _convert(value, hints[key], dotted(key)) for key, value in mapping.items()}
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a __post_init__ check: "key: expected ..., got ..."
        raise ConfigError(f"{dotted(str(exc))}") from None


def parse_section(cls: type, mapping: dict[str, Any], prefix: str, provenance: dict[str, str]) -> Any:
    """Validate ``mapping`` into the dataclass ``cls``; errors name the file that set the key."""
    try:
        return _parse(cls, mapping, prefix)
    except ConfigError as exc:
        message = str(exc)
        dotted = message.split(":", 1)[0].split("[", 1)[0]
        source = _source_of(dotted, provenance)
        raise ConfigError(f"{source}: {message}" if source else message) from None


def _source_of(dotted: str, provenance: dict[str, str]) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        source = provenance.get(".".join(parts[:end]))
        if source:
            return source
    return None


# --------------------------------------------------------------------------- resolution


@dataclass
class RunSpec:
    """What a run is made of before resolution: config names plus override layers."""

    model: str
    dataset: str = "moving_objects"
    train: str = "default"
    overrides: list[Layer] = field(default_factory=list)


def resolve(spec: RunSpec, scale: str, cli_overrides: dict[str, Any] | None = None) -> RunConfig:
    """Merge the layers of ``spec`` at ``scale`` and validate them into a :class:`RunConfig`."""
    from vpbench import registry

    if scale not in SCALES:
        raise ConfigError(f"--scale {scale!r}: unknown scale (known: {', '.join(SCALES)})")
    layers: list[Layer] = []
    for kind, name in (("train", spec.train), ("datasets", spec.dataset), ("models", spec.model)):
        layers += file_layers(find_config(kind, name), scale)
    layers += spec.overrides
    if cli_overrides:
        layers.append(Layer(cli_overrides, "--set"))

    merged: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for layer in layers:
        for key in layer.body:
            if key not in FILE_SECTIONS:
                raise ConfigError(f"{layer.source}: {key}: unknown key{_nearest(key, list(FILE_SECTIONS))}")
        merge_into(merged, layer.body, layer.source, provenance)

    model_body = dict(merged.pop("model", {}) or {})
    name = model_body.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{find_config('models', spec.model)}: model.name: missing (the registered model to build)")
    try:
        entry = registry.get(name)
    except VpbenchError as exc:
        raise ConfigError(f"{_source_of('model.name', provenance)}: {exc}") from None
    options = parse_section(entry.config_class, model_body, "model", provenance)

    sections = {
        "data": parse_section(DataConfig, merged.get("data", {}) or {}, "data", provenance),
        "train": parse_section(TrainConfig, merged.get("train", {}) or {}, "train", provenance),
        "eval": parse_section(EvalConfig, merged.get("eval", {}) or {}, "eval", provenance),
        "profile": parse_section(ProfileConfig, merged.get("profile", {}) or {}, "profile", provenance),
    }
    scalars = parse_section(_Scalars, {k: merged[k] for k in ("seed", "deterministic", "task") if k in merged}, "",
                            provenance)
    config = RunConfig(
        model={"name": name, **dataclasses.asdict(options)},
        seed=scalars.seed,
        deterministic=scalars.deterministic,
        task=scalars.task,
        scale=scale,
        sources={"model": spec.model, "dataset": spec.dataset, "train": spec.train},
        **sections,
    )
    check_data(config.data, _data_source(provenance, [layer.source for layer in layers]))
    check_geometry(options, config.data, _source_of("model", provenance) or "model")
    return config


def _data_source(provenance: dict[str, str], order: list[str]) -> str:
    """The latest layer that set a data size: what a geometry error should point at."""
    keys = ("data.height", "data.width", "data.patch", "data.stride_ratio")
    sources = [provenance[k] for k in keys if k in provenance]
    return max(sources, key=order.index) if sources else "data"


@dataclass
class _Scalars:
    seed: int = 0
    deterministic: bool = True
    task: Literal["train", "profile"] = "train"


def check_geometry(options: Any, data: DataConfig, source: str) -> None:
    """Call ``check_geometry(geometry)`` on every nested part of a model config that defines it."""
    stack = [options]
    while stack:
        node = stack.pop()
        if hasattr(node, "check_geometry"):
            try:
                node.check_geometry(data.geometry())
            except GeometryError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        if dataclasses.is_dataclass(node):
            stack += [getattr(node, f.name) for f in dataclasses.fields(node)]


def check_data(data: DataConfig, source: str) -> None:
    """Sizes >= 1, sr a power of two, and H, W divisible by p·sr (the latent grid must be whole)."""
    for key in ("height", "width", "context", "horizon", "train_clips", "val_clips", "test_clips", "patch",
                "stride_ratio"):
        if getattr(data, key) < 1:
            raise ConfigError(f"{source}: data.{key}: expected >= 1, got {getattr(data, key)}")
    if data.stride_ratio & (data.stride_ratio - 1):
        raise ConfigError(f"{source}: data.stride_ratio: expected a power of two, got {data.stride_ratio}")
    factor = data.patch * data.stride_ratio
    if data.height % factor or data.width % factor:
        raise ConfigError(f"{source}: data.height x data.width = {data.height}x{data.width} is not divisible by "
                          f"data.patch · data.stride_ratio = {data.patch}·{data.stride_ratio} = {factor}")


def load_run_file(path: Path) -> RunSpec:
    """A ``--config`` file: ``uses: {model, dataset, train}`` plus override sections."""
    body = load_yaml(path)
    uses = body.pop("uses", None)
    if not isinstance(uses, dict) or "model" not in uses:
        raise ConfigError(f"{path}: uses: expected a mapping with at least 'model' (and optionally 'dataset', 'train')")
    unknown = set(uses) - {"model", "dataset", "train"}
    if unknown:
        raise ConfigError(f"{path}: uses.{sorted(unknown)[0]}: unknown key (known: model, dataset, train)")
    return RunSpec(overrides=[Layer(body, str(path))], **uses)
