"""Model name -> builder, found through the ``vpbench.models`` entry points.

A package registers a model in its ``pyproject.toml``::

    [project.entry-points."vpbench.models"]
    convlstm = "baselines.convlstm:build_convlstm"

and decorates the builder with :func:`model_builder`, which declares the dataclass its config
section is validated into. A builder takes ``(config, geometry)`` and returns a Predictor.
Listing names imports nothing; :func:`get` imports the one module asked for. A name registered by
two distributions is an error naming both; an unknown name lists what is installed.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any, Callable

from vpbench.errors import RegistryError
from vpbench.config.schema import parse_section

GROUP = "vpbench.models"


def model_builder(config_class: type) -> Callable:
    """Mark a function as a vpbench model builder whose config section is ``config_class``."""
    if not dataclasses.is_dataclass(config_class):
        raise TypeError(f"model_builder: config_class must be a dataclass, got {config_class!r}")

    def decorate(fn: Callable) -> Callable:
        fn.config_class = config_class
        return fn

    return decorate


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., Any]
    config_class: type
    source: str  # "distribution: module:attr"

    @property
    def description(self) -> str:
        doc = (self.builder.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        previous = found.get(ep.name)
        if previous is not None and previous.value != ep.value:
            raise RegistryError(
                f"model {ep.name!r} is registered twice: {_where(previous)} and {_where(ep)}"
            )
        found[ep.name] = ep
    return found


def _where(ep: metadata.EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "?"
    return f"{dist}: {ep.value}"


def names() -> list[str]:
    """Every registered model name, without importing any model."""
    return sorted(_entry_points())


def get(name: str) -> ModelEntry:
    """The entry for ``name``; a RegistryError lists the installed names otherwise."""
    points = _entry_points()
    if name not in points:
        close = difflib.get_close_matches(name, list(points), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RegistryError(f"unknown model {name!r}{hint}; installed: {', '.join(sorted(points)) or 'none'}")
    ep = points[name]
    builder = ep.load()
    config_class = getattr(builder, "config_class", None)
    if config_class is None:
        raise RegistryError(f"model {name!r} ({_where(ep)}) is not decorated with vpbench.interface.registry.model_builder")
    return ModelEntry(name, builder, config_class, _where(ep))


def build(model_config: dict[str, Any], geometry: Any) -> Any:
    """Build the Predictor described by a resolved model section ``{"name": ..., **options}``."""
    options = dict(model_config)
    entry = get(options.pop("name"))
    cfg = parse_section(entry.config_class, options, "model")
    predictor = entry.builder(cfg, geometry)
    predictor.config = dict(model_config)
    return predictor
