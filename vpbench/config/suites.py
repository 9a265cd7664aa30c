"""A suite file -> the list of fully resolved runs.

``configs/suites/<name>.yaml``::

    name: smoke
    version: 1                     # printed by the tables
    layout: runs                   # the table layout: runs | ablation | losses | leaderboard | profile
    reference: RPM                 # the row label paired comparisons are made against (optional)
    description: ...
    train: default                 # configs/train/<train>.yaml
    datasets: [moving_objects]     # configs/datasets/*.yaml
    models:                        # configs/models/*.yaml; an entry may add overrides:
      - convlstm
      - {config: convlstm, label: convlstm_k3, set: {model: {kernel: 3}}}
    seeds: 1                       # runs per (model, dataset), with seeds 0 .. seeds - 1; or per scale:
                                   # {default: 5, smoke: 1} (--seeds N overrides it)
    set: {}                        # overrides for every run

The expansion is models x datasets x seeds; each run is resolved at the requested scale with the
suite's ``set`` under the model entry's ``set`` under ``--set``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpbench.config.resolution import Layer, RunSpec, configs_root, find_config, load_yaml, parse_yaml, resolve
from vpbench.config.schema import RunConfig
from vpbench.errors import ConfigError

SUITE_KEYS = {"name", "version", "layout", "reference", "description", "train", "datasets", "models", "seeds", "set"}
LAYOUTS = ("runs", "ablation", "losses", "leaderboard", "profile")


@dataclass
class SuiteEntry:
    config: str  # the model config name
    label: str  # how tables name the row
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    name: str
    version: int
    description: str
    train: str
    datasets: list[str]
    models: list[SuiteEntry]
    seeds: int | dict[str, int]  # one count, or {scale: count, "default": count}
    overrides: dict[str, Any]
    path: Path
    layout: str = "runs"
    reference: str | None = None
    paper: dict[str, Any] | None = None  # the published numbers as they were when the suite ran (None: today's file)

    def seeds_at(self, scale: str) -> int:
        """The suite's seeds at ``scale``: its own count for that scale, or its default."""
        if isinstance(self.seeds, dict):
            return self.seeds.get(scale, self.seeds["default"])
        return self.seeds

    def record(self, paper: dict[str, Any]) -> dict[str, Any]:
        """What the report needs of this suite, as JSON: stored with its runs when they run.

        ``paper`` is ``configs/reference/paper_tables.yaml`` as read now, so that a table renders the
        same after the suite file or the reference file changes.
        """
        return {"name": self.name, "version": self.version, "layout": self.layout, "reference": self.reference,
                "description": self.description, "train": self.train, "datasets": self.datasets,
                "models": [{"config": e.config, "label": e.label} for e in self.models], "seeds": self.seeds,
                "source": str(self.path), "paper": paper}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Suite:
        """The suite as :meth:`record` stored it (its entries' overrides are not needed to report)."""
        return cls(name=record["name"], version=record["version"], description=record["description"],
                   train=record["train"], datasets=list(record["datasets"]),
                   models=[SuiteEntry(m["config"], m["label"]) for m in record["models"]], seeds=record["seeds"],
                   overrides={}, path=Path(record["source"]), layout=record["layout"], reference=record["reference"],
                   paper=record.get("paper"))


def load_suite(name: str) -> Suite:
    path = find_config("suites", name)
    body = load_yaml(path)
    unknown = set(body) - SUITE_KEYS
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(SUITE_KEYS))})")
    entries = []
    for i, item in enumerate(body.get("models") or []):
        if isinstance(item, str):
            entries.append(SuiteEntry(item, item))
        elif isinstance(item, dict) and "config" in item and set(item) <= {"config", "label", "set"}:
            entries.append(SuiteEntry(item["config"], item.get("label", item["config"]), item.get("set") or {}))
        else:
            raise ConfigError(f"{path}: models[{i}]: expected a config name or {{config, label, set}}, got {item!r}")
    if not entries:
        raise ConfigError(f"{path}: models: the suite lists no model")
    seeds = body.get("seeds", 1)
    per_scale = seeds if isinstance(seeds, dict) else {"default": seeds}
    for scale, count in per_scale.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            where = "seeds" if not isinstance(seeds, dict) else f"seeds.{scale}"
            raise ConfigError(f"{path}: {where}: expected an integer >= 1, got {count!r}")
    if isinstance(seeds, dict) and "default" not in seeds:
        raise ConfigError(f"{path}: seeds: a mapping of scale to seeds needs a 'default' (got {sorted(seeds)})")
    layout = body.get("layout", "runs")
    if layout not in LAYOUTS:
        raise ConfigError(f"{path}: layout: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    reference = body.get("reference")
    if reference is not None and reference not in [e.label for e in entries]:
        raise ConfigError(f"{path}: reference: {reference!r} is not the label of a listed model")
    return Suite(
        name=body.get("name", path.stem), version=int(body.get("version", 1)),
        description=" ".join(str(body.get("description", "")).split()), train=body.get("train", "default"),
        datasets=list(body.get("datasets") or ["moving_objects"]), models=entries, seeds=seeds,
        overrides=body.get("set") or {}, path=path, layout=layout, reference=reference,
    )


def expand(suite: Suite, scale: str, seeds: int | None = None,
           cli_overrides: dict[str, Any] | None = None) -> list[tuple[str, RunConfig]]:
    """``(label, config)`` for every run of the suite at ``scale``; ``seeds`` overrides the file's count there.

    Each (data set, model entry) is resolved once; its seeds differ only in ``seed``.
    """
    runs = []
    for dataset in suite.datasets:
        for entry in suite.models:
            layers = [Layer(suite.overrides, f"{suite.path} (set)"),
                      Layer(entry.overrides, f"{suite.path} (models: {entry.label})")]
            config = resolve(RunSpec(entry.config, dataset, suite.train, layers), scale, cli_overrides)
            runs.extend((entry.label, dataclasses.replace(config, seed=seed)) for seed in range(seeds or suite.seeds_at(scale)))
    return runs


def paper_tables() -> dict[str, Any]:
    """``configs/reference/paper_tables.yaml`` as it is now (stored with a suite's definition when it runs)."""
    return parse_yaml((configs_root() / "reference" / "paper_tables.yaml").read_text()) or {}


def suite_record(name: str) -> dict[str, Any]:
    """The definition of suite ``name`` as :meth:`Suite.record` stores it, with today's published numbers."""
    return load_suite(name).record(paper_tables())
