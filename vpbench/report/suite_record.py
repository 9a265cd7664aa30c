"""A suite as the report sees it: the definition stored with its runs (:meth:`vpbench.store.Store.record_suite`,
or an export's ``suite.json``), not today's suite file, so a table renders the same after the file changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SuiteRow:
    config: str  # the model config the row ran
    label: str  # how tables name the row


@dataclass(frozen=True)
class SuiteRecord:
    name: str
    version: int
    layout: str  # runs | ablation | losses | leaderboard | profile
    reference: str | None  # the label every row is compared with
    description: str
    train: str
    datasets: list[str]  # as the runs name them (their config's sources.data)
    models: list[SuiteRow]  # the rows, in suite order
    seeds: int | dict[str, int]  # one count, or {scale: count, "default": count}
    source: str  # the suite file it was read from
    paper: dict[str, Any] = field(default_factory=dict)  # configs/reference/paper_tables.yaml as the suite ran

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SuiteRecord:
        return cls(name=record["name"], version=record["version"], layout=record["layout"],
                   reference=record["reference"], description=record["description"], train=record["train"],
                   datasets=list(record["datasets"]), models=[SuiteRow(m["config"], m["label"]) for m in record["models"]],
                   seeds=record["seeds"], source=record["source"], paper=record.get("paper") or {})

    def record(self) -> dict[str, Any]:
        """The JSON form :meth:`from_record` reads."""
        return {"name": self.name, "version": self.version, "layout": self.layout, "reference": self.reference,
                "description": self.description, "train": self.train, "datasets": self.datasets,
                "models": [{"config": m.config, "label": m.label} for m in self.models], "seeds": self.seeds,
                "source": self.source, "paper": self.paper}
