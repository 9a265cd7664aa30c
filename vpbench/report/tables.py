"""A table is a value matrix plus writers: Markdown, LaTeX (booktabs) and CSV from the same rows.

Units and number formats live here and only here (:data:`FORMATS`). CSV keeps raw values at full
precision with the unit in the header; Markdown and LaTeX print the formatted, scaled values. A
missing value prints ``N/A``, never 0.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from vpbench.metrics import METRICS


@dataclass(frozen=True)
class Format:
    scale: float  # display multiplier
    digits: int
    unit: str  # plain-text unit suffix for headers ("" for none)
    latex_unit: str


FORMATS = {
    "psnr": Format(1.0, 2, "dB", "dB"),
    "ssim": Format(1.0, 4, "", ""),
    "lpips": Format(100.0, 2, "×10⁻²", r"$\times 10^{-2}$"),
}
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
CONVENTIONS = ("PSNR per frame on [0,1] (predictions clipped); SSIM Gaussian σ=1.5, data range 1, channels "
               "averaged; LPIPS AlexNet v0.1 on RGB in [-1,1], shown ×10⁻²; t is the frame index, frames "
               "1..T_in are context; checkpoints selected on the val split.")


@dataclass
class Column:
    key: str  # the row dict's key
    header: str
    metric: str | None = None  # a key of FORMATS for numeric metric columns


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def _arrow(metric: str) -> str:
    return "↑" if METRICS[metric].higher_is_better else "↓"


def _formatted(value: Any, metric: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if metric is None:
        return str(value)
    fmt = FORMATS[metric]
    return f"{value * fmt.scale:.{fmt.digits}f}"


def runs_table(records: list[dict[str, Any]], title: str = "Runs") -> Table:
    """One row per complete run: label, model, dataset, seed, then each metric at every step and its mean."""
    done = [r for r in records if r["status"] == "complete" and r.get("metrics")]
    columns = [Column("label", "Run"), Column("model", "Model"), Column("dataset", "Dataset"),
               Column("scale", "Scale"), Column("seed", "Seed"), Column("run_id", "Run id")]
    rows = []
    step_labels: dict[int, int] = {}
    for record in done:
        metrics, config = record["metrics"], record["config"]
        context = config["data"]["context"]
        row = {"label": record.get("label") or config["sources"]["model"], "model": record["model"],
               "dataset": record["dataset"], "scale": record["scale"], "seed": record["seed"],
               "run_id": record["run_id"]}
        for metric in METRICS:
            values = metrics.get(metric)
            for k, step in enumerate(metrics["steps"]):
                step_labels[step] = context + step
                row[f"{metric}@{step}"] = values["per_step"][k] if values else None
            row[f"{metric}@mean"] = values["mean"] if values else None
        rows.append(row)
    for metric in METRICS:
        for step in sorted(step_labels):
            columns.append(Column(f"{metric}@{step}", f"{METRIC_LABELS[metric]}{_arrow(metric)} t={step_labels[step]}", metric))
        columns.append(Column(f"{metric}@mean", f"{METRIC_LABELS[metric]}{_arrow(metric)} mean", metric))
    unavailable = sorted({r["metrics"].get("lpips_unavailable") for r in done} - {None})
    notes = [f"LPIPS unavailable: {reason}" for reason in unavailable]
    return Table(title, columns, rows, caption=CONVENTIONS, notes=notes)


def _header(column: Column, latex: bool = False) -> str:
    header = latex_escape(column.header) if latex else column.header
    if column.metric is None:
        return header
    fmt = FORMATS[column.metric]
    unit = fmt.latex_unit if latex else fmt.unit
    return f"{header} ({unit})" if unit else header


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(_header(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if c.metric else "---" for c in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_formatted(row.get(c.key), c.metric) for c in table.columns) + " |")
    lines += ["", table.caption] if table.caption else []
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "↑": r"$\uparrow$", "↓": r"$\downarrow$", "σ": r"$\sigma$", "×": r"$\times$",
                  "⁻": r"$^{-}$", "²": r"$^{2}$", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    parts = text.split("×10⁻²")
    escaped = ["".join(_LATEX_SPECIAL.get(ch, ch) for ch in part) for part in parts]
    return r"$\times 10^{-2}$".join(escaped)


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if c.metric else "l" for c in table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_header(c, latex=True) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        lines.append(" & ".join(latex_escape(_formatted(row.get(c.key), c.metric)) for c in table.columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = " ".join([table.title + ".", table.caption, *table.notes]).strip()
    lines += [rf"\caption{{{latex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Raw values at full precision; metric headers carry the metric, step and raw unit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in table.columns])
    return buffer.getvalue()


WRITERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv}
