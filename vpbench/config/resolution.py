"""Config resolution: YAML layers -> a validated :class:`~vpbench.config.schema.RunConfig`, and the hash that names a run.

A run is resolved from layers, later ones winning:

1. the dataclass defaults of :mod:`vpbench.config.schema`;
2. ``configs/train/<train>.yaml``, ``configs/datasets/<dataset>.yaml``, ``configs/models/<model>.yaml``
   (each file's body, then its ``scales: {<scale>: ...}`` section; ``_base_: other.yaml`` inherits
   from a file beside it or under ``configs/``);
3. the run's own overrides (a ``--config`` file's body, a suite's ``set:``);
4. ``--set a.b=c`` on the command line.

Every key remembers the layer that set it, so an unknown key, a wrong type or a value out of range is
reported as ``FILE: dotted.key: ...`` with the nearest known key. The model section is validated by
the config class its builder declares (:mod:`vpbench.interface.registry`); vpbench itself knows no model.
YAML is read with every float literal Python accepts (``1e-3`` is a float, not YAML 1.1's string).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vpbench import __version__
from vpbench.interface import registry
from vpbench.data import fingerprint
from vpbench.errors import ConfigError, GeometryError, VpbenchError
from vpbench.config.schema import (DataConfig, EvalConfig, ProfileConfig, RunConfig, RunScalars, TrainConfig, nearest,
                            parse_section)

SCALES = ("smoke", "small", "paper")
SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig, "profile": ProfileConfig}
FILE_SECTIONS = ("model", *SECTIONS, "task", "seed", "deterministic")


# --------------------------------------------------------------------------- reading YAML


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, plus Python's float literals (``1e-3``, ``1E12``, ``5e+2``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)[eE][-+]?\d(?:_?\d)*$"),
    list("-+0123456789."),
)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).replace("_", "").lower()
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(text, text))


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


MAX_YAML_CHARS = 1 << 20  # a config, suite or run file; the largest shipped one is under 10 kB
MAX_YAML_NODES = 100_000  # after alias expansion: a billion-laughs document is refused before it is built


class YamlLimitError(yaml.YAMLError):
    """A document over MAX_YAML_CHARS, or whose aliases expand past MAX_YAML_NODES."""


def parse_yaml(text: str) -> Any:
    """A YAML document with Python's float literals (safe: only plain YAML types are built), refused when
    longer than MAX_YAML_CHARS or when its aliases would expand to more than MAX_YAML_NODES nodes."""
    if len(text) > MAX_YAML_CHARS:
        raise YamlLimitError(f"{len(text):,} characters, more than the {MAX_YAML_CHARS:,} a config may have")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes = _expanded_size(node, {})
        if nodes > MAX_YAML_NODES:
            raise YamlLimitError(f"its aliases expand to {nodes:,} nodes, more than the {MAX_YAML_NODES:,} a config "
                                 "may have")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document once every alias is replaced by a copy of what it names (memoised: linear time)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 0  # a node that contains itself counts once
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        sizes[key] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[key]


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
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{kind} config: expected a name, got {name!r} ({type(name).__name__})")
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = configs_root() / kind / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (configs_root() / kind).glob("*.yaml"))
        raise ConfigError(f"{kind} config not found: {path}{nearest(name, known)} (known: {', '.join(known) or 'none'})")
    return path


def load_yaml(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML mapping with its ``_base_`` files merged under it.

    A base is named relative to the file and must lie beside it (or below) or under ``configs/``;
    a chain of bases that comes back to a file is an error listing the chain.
    """
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        body = parse_yaml(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start}: {exc.reason})", source=str(path)) from None
    except YamlLimitError as exc:
        raise ConfigError(f"refused: {exc}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {' '.join(str(exc).split())}", source=str(path)) from None
    if not isinstance(body, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(body).__name__}", source=str(path))
    bases = body.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"expected a file name or a list of file names, got {bases!r}", "_base_", str(path))
    merged: dict[str, Any] = {}
    chain = (*_chain, path.resolve())
    for base in bases:
        merge_into(merged, load_yaml(_base_path(path, base, chain), chain))
    merge_into(merged, body)
    return merged


def _base_path(path: Path, base: str, chain: tuple[Path, ...]) -> Path:
    """The file a ``_base_`` entry names, checked to stay inside the config tree and out of a cycle."""
    target = (path.parent / base).resolve()
    allowed = (path.parent.resolve(), configs_root().resolve())
    if not any(target.is_relative_to(folder) for folder in allowed):
        raise ConfigError(f"{base!r} lies outside {allowed[0]} and {allowed[1]}: a base must be a config "
                          "file beside this one or under configs/", "_base_", str(path))
    if target in chain:
        loop = " -> ".join(p.name for p in chain[chain.index(target):]) + f" -> {target.name}"
        raise ConfigError(f"cycle: {loop}", "_base_", str(path))
    return target


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
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"expected KEY=VALUE with a dotted key, e.g. train.steps=100; got {item!r}",
                              source="--set")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(parts[:depth + 1])} is set to a value and used as a section",
                                  key.strip(), "--set")
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
        raise ConfigError(f"unknown scale {unknown} (known: {', '.join(SCALES)})", "scales", str(path))
    layers = [Layer(body, str(path))]
    if scales.get(scale):
        if not isinstance(scales[scale], dict):
            raise ConfigError(f"expected a mapping, got {scales[scale]!r}", f"scales.{scale}", str(path))
        layers.append(Layer(scales[scale], f"{path} (scales.{scale})"))
    return layers


def _check_layer(layer: Layer) -> None:
    """Top-level keys a run file may set, and sections that are mappings."""
    for key, value in layer.body.items():
        if key not in FILE_SECTIONS:
            raise ConfigError(f"unknown key{nearest(str(key), list(FILE_SECTIONS))}", str(key), layer.source)
        if (key == "model" or key in SECTIONS) and value is not None and not isinstance(value, dict):
            raise ConfigError(f"expected a mapping of {key} keys, got {value!r} ({type(value).__name__})",
                              key, layer.source)


def _source_of(dotted: str | None, provenance: dict[str, str]) -> str | None:
    parts = (dotted or "").split("[", 1)[0].split(".")
    for end in range(len(parts), 0, -1):
        source = provenance.get(".".join(parts[:end]))
        if source:
            return source
    return None


def _parse(cls: type, mapping: dict[str, Any], prefix: str, provenance: dict[str, str]) -> Any:
    """:func:`~vpbench.config.schema.parse_section`, with the error pointed at the layer that set the key."""
    try:
        return parse_section(cls, mapping, prefix)
    except ConfigError as exc:
        exc.source = exc.source or _source_of(exc.key, provenance)
        raise


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
    if scale not in SCALES:
        raise ConfigError(f"unknown scale (known: {', '.join(SCALES)})", f"--scale {scale!r}")
    data_layers = dataset_layers(spec.dataset, scale)
    layers = [*file_layers(find_config("train", spec.train), scale), *data_layers,
              *file_layers(find_config("models", spec.model), scale), *spec.overrides]
    if cli_overrides:
        layers.append(Layer(cli_overrides, "--set"))

    merged: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for layer in layers:
        _check_layer(layer)
        merge_into(merged, layer.body, layer.source, provenance)

    model_body = dict(merged.pop("model", {}) or {})
    name = model_body.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError("missing (the registered model to build)", "model.name",
                          _source_of("model.name", provenance) or str(find_config("models", spec.model)))
    try:
        entry = registry.get(name)
    except VpbenchError as exc:
        raise ConfigError(str(exc), source=_source_of("model.name", provenance)) from None
    options = _parse(entry.config_class, model_body, "model", provenance)
    sections = {key: _parse(cls, merged.get(key) or {}, key, provenance) for key, cls in SECTIONS.items()}
    scalars = _parse(RunScalars, {k: merged[k] for k in ("seed", "deterministic", "task") if k in merged}, "",
                     provenance)
    config = RunConfig(
        model={"name": name, **dataclasses.asdict(options)},
        seed=scalars.seed,
        deterministic=scalars.deterministic,
        task=scalars.task,
        scale=scale,
        sources={"model": spec.model, "dataset": spec.dataset, "train": spec.train,
                 "data": data_label(spec.dataset, data_layers, sections["data"])},
        **sections,
    )
    check_data(config.data, _data_source(provenance, [layer.source for layer in layers]))
    check_geometry(options, config.data, _source_of("model", provenance) or "model")
    if scale != "paper":
        config.paper_counterpart = _paper_counterpart(spec, cli_overrides)
    return config


def _paper_counterpart(spec: RunSpec, cli_overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The model config and geometry that ``spec`` and the same overrides resolve to at paper scale."""
    try:
        paper = resolve(spec, "paper", cli_overrides)
    except VpbenchError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"model": paper.model, "geometry": dataclasses.asdict(paper.data.geometry())}


def dataset_layers(name: str, scale: str) -> list[Layer]:
    """The layers of ``configs/datasets/<name>.yaml``, or, where no such file exists, those of the data set
    ``vpbench data prepare --name NAME`` made (:func:`prepared_layer`), so a prepared data set runs by its name."""
    try:
        return file_layers(find_config("datasets", name), scale)
    except ConfigError:
        layer = prepared_layer(name)
        if layer is None:
            raise
        return [layer]


def prepared_layer(name: str) -> Layer | None:
    """``data: {source: prepared, name: NAME, ...}`` with the size and clip length of the prepared data set
    ``name`` (its ``vpbench_manifest.json``), context and horizon half the clip each; None where none exists."""
    from vpbench.data.storage import MANIFEST, prepared_path

    try:
        path = prepared_path(name) / MANIFEST
    except VpbenchError:
        return None
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        (height, width), length = manifest["size"], int(manifest["clip_length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"unreadable manifest of the prepared data set {name!r} ({type(exc).__name__}: {exc})",
                          source=str(path)) from None
    context = max(1, length // 2)
    data = {"source": "prepared", "name": name, "height": int(height), "width": int(width), "channels": 3,
            "context": context, "horizon": max(1, length - context),
            "train_clips": 1_000_000, "val_clips": 1_000_000, "test_clips": 1_000_000}  # bounds: the data decides
    return Layer({"data": data}, f"{path} (prepared data set {name})")


def data_label(dataset: str, layers: list[Layer], data: DataConfig) -> str:
    """How tables name the data a run used: its dataset config's name, unless the run's own overrides point
    it at other data (``data.source``/``data.name``), which is then named by ``data.name`` (or its source)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merge_into(merged, layer.body)
    declared = merged.get("data") or {}
    defaults = DataConfig()
    if (declared.get("source", defaults.source), declared.get("name", defaults.name)) == (data.source, data.name):
        return dataset
    return data.name or data.source


def _data_source(provenance: dict[str, str], order: list[str]) -> str:
    """The latest layer that set a data size: what a geometry error should point at."""
    keys = ("data.height", "data.width", "data.patch", "data.stride_ratio")
    sources = [provenance[k] for k in keys if k in provenance]
    return max(sources, key=order.index) if sources else "data"


def check_geometry(options: Any, data: DataConfig, source: str) -> None:
    """Call ``check_geometry(geometry)`` on every nested part of a model config that defines it."""
    stack = [options]
    while stack:
        node = stack.pop()
        if hasattr(node, "check_geometry"):
            try:
                node.check_geometry(data.geometry())
            except GeometryError as exc:
                raise ConfigError(str(exc), source=source) from None
        if dataclasses.is_dataclass(node):
            stack += [getattr(node, f.name) for f in dataclasses.fields(node)]


def check_data(data: DataConfig, source: str) -> None:
    """A registered source; sr a power of two, and H, W divisible by p·sr (the latent grid must be whole); sizes
    >= 1 are schema ranges."""
    from vpbench.data.sources import sources

    if data.source not in sources():
        raise ConfigError(f"unknown data source {data.source!r}{nearest(data.source, list(sources()))} "
                          f"(known: {', '.join(sources())})", "data.source", source)
    if data.stride_ratio & (data.stride_ratio - 1):
        raise ConfigError(f"expected a power of two, got {data.stride_ratio}", "data.stride_ratio", source)
    factor = data.patch * data.stride_ratio
    if data.height % factor or data.width % factor:
        raise ConfigError(f"data.height x data.width = {data.height}x{data.width} is not divisible by "
                          f"data.patch · data.stride_ratio = {data.patch}·{data.stride_ratio} = {factor}",
                          source=source)


def load_run_file(path: Path) -> RunSpec:
    """A ``--config`` file: ``uses: {model, dataset, train}`` plus override sections."""
    body = load_yaml(path)
    uses = body.pop("uses", None)
    if not isinstance(uses, dict) or "model" not in uses:
        raise ConfigError("expected a mapping with at least 'model' (and optionally 'dataset', 'train')", "uses",
                          str(path))
    for key, value in uses.items():
        if key not in ("model", "dataset", "train"):
            raise ConfigError("unknown key (known: model, dataset, train)", f"uses.{key}", str(path))
        if not isinstance(value, str) or not value:
            raise ConfigError(f"expected a config name, got {value!r} ({type(value).__name__})", f"uses.{key}",
                              str(path))
    return RunSpec(overrides=[Layer(body, str(path))], **uses)


# --------------------------------------------------------------------------- identity


def run_identity(cfg: RunConfig) -> dict[str, Any]:
    """What names a run: the resolved values (but fields added later, at their defaults), the package
    version, the data fingerprint."""
    body = cfg.to_dict()
    body.pop("scale")
    body.pop("sources")
    body.pop("paper_counterpart")
    _drop_later_defaults(cfg, body)
    return {"config": body, "vpbench": __version__, "data": fingerprint(cfg.data)}


def _drop_later_defaults(node: Any, body: dict[str, Any]) -> None:
    """Remove from ``body`` (``node`` as a dict) every :func:`~vpbench.config.schema.added_later` field
    that holds its default, in ``node`` and the dataclasses nested in it."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.metadata.get("identity") == "when_set" and value == f.default:
            del body[f.name]
        elif dataclasses.is_dataclass(value):
            _drop_later_defaults(value, body[f.name])


def run_id_of(cfg: RunConfig) -> str:
    """A stable content hash (16 hex digits) of :func:`run_identity`."""
    canonical = json.dumps(run_identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
