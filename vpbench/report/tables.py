"""A table is a value matrix plus writers: Markdown, LaTeX (booktabs) and CSV from the same rows.

Units and number formats live here and only here (:data:`FORMATS`). A cell holds a number, a
:class:`~vpbench.report.stats.Estimate` (mean ± 95% CI) or a :class:`~vpbench.report.stats.Comparison`
(paired difference with its two-level bootstrap interval, ``*`` when the interval excludes zero).
CSV keeps raw values at full precision (an interval's half-width, or a comparison's bounds, in their
own columns); Markdown and LaTeX print the formatted, scaled values. A missing value prints ``N/A``,
never 0.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from vpbench.metrics import METRICS
from vpbench.report.stats import Comparison, Estimate


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
    "paper": Format(1.0, 2, "", ""),  # published numbers, already in the paper's units
    "mi": Format(1 / 2**20, 2, "Mi", "Mi"),  # parameters, binary millions
    "m": Format(1e-6, 2, "M", "M"),  # parameters, decimal millions
    "gimac": Format(1 / 2**30, 2, "GiMAC", "GiMAC"),
    "gmac": Format(1e-9, 2, "GMAC", "GMAC"),
    "gflop": Format(1e-9, 3, "GFLOP", "GFLOP"),
    "ms": Format(1.0, 1, "ms", "ms"),
    "s": Format(1.0, 2, "s", "s"),
    "mib": Format(1.0, 0, "MiB", "MiB"),
    "count": Format(1.0, 0, "", ""),
}
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
CONVENTIONS = ("PSNR per frame on [0,1] (predictions clipped); SSIM Gaussian σ=1.5, data range 1, channels "
               "averaged; LPIPS AlexNet v0.1 on RGB in [−1, 1], shown ×10⁻²; t is the frame index, frames "
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


def arrow(metric: str) -> str:
    """↑ for a metric where higher is better, else ↓."""
    return "↑" if METRICS[metric].higher_is_better else "↓"


def _number(value: float, fmt: Format, signed: bool = False) -> str:
    return f"{value * fmt.scale:{'+' if signed else ''}.{fmt.digits}f}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _formatted(value: Any, metric: str | None) -> str:
    if _missing(value):
        return "N/A"
    if metric is None:
        return str(value)
    fmt = FORMATS[metric]
    if isinstance(value, Estimate):
        if value.half_width is None:
            return _number(value.mean, fmt)
        return f"{_number(value.mean, fmt)} ± {_number(value.half_width, fmt)}"
    if isinstance(value, Comparison):
        mark = "*" if value.significant else ""
        return (f"{_number(value.difference, fmt, signed=True)} "
                f"[{_number(value.low, fmt, signed=True)}, {_number(value.high, fmt, signed=True)}]{mark}")
    return _number(value, fmt)


def runs_table(runs, title: str = "Runs") -> Table:
    """One row per run of a flat ``runs`` frame (:mod:`vpbench.report.records`): each metric per step and its mean.

    Steps are headed by the frame index t when every run has the same context, else by +k.
    """
    runs = runs[runs["task"] == "train"] if "task" in runs else runs
    columns = [Column("label", "Run"), Column("model", "Model"), Column("dataset", "Dataset"),
               Column("scale", "Scale"), Column("seed", "Seed"), Column("run_id", "Run id")]
    contexts = set(runs["context"]) if len(runs) else set()
    horizon = int(runs["horizon"].max()) if len(runs) else 0
    for metric in METRICS:
        for step in range(1, horizon + 1):
            where = f"t={int(next(iter(contexts))) + step}" if len(contexts) == 1 else f"+{step}"
            columns.append(Column(f"{metric}@{step}", f"{METRIC_LABELS[metric]}{arrow(metric)} {where}", metric))
        columns.append(Column(f"{metric}_mean", f"{METRIC_LABELS[metric]}{arrow(metric)} mean", metric))
    rows = [{c.key: row.get(c.key) for c in columns} for row in runs.to_dict("records")]
    reasons = sorted({r for r in runs.get("lpips_unavailable", []) if isinstance(r, str)})
    notes = [f"LPIPS unavailable: {reason}" for reason in reasons]
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
                  "⁻": r"$^{-}$", "²": r"$^{2}$", "±": r"$\pm$", "θ": r"$\theta$", "τ": r"$\tau$",
                  "Δ": r"$\Delta$", "→": r"$\rightarrow$", "·": r"$\cdot$", "≤": r"$\leq$",
                  "<": r"$<$", ">": r"$>$", "−": r"$-$", "†": r"\textsuperscript{\dag}", "●": r"$\bullet$", "○": r"$\circ$"}


def latex_escape(text: str) -> str:
    parts = text.split("×10⁻²")
    escaped = ["".join(_LATEX_SPECIAL.get(ch, ch) for ch in part) for part in parts]
    return r"$\times 10^{-2}$".join(escaped)


def _latex_cell(value: Any, metric: str | None) -> str:
    """A cell in LaTeX: numbers in math mode (so a negative one gets a true minus sign, not a hyphen, and
    ``±`` is ``\\pm``), a comparison's interval in a smaller size."""
    if _missing(value):
        return "N/A"
    if metric is None:
        return latex_escape(str(value))
    fmt = FORMATS[metric]
    if isinstance(value, Estimate):
        if value.half_width is None:
            return f"${_number(value.mean, fmt)}$"
        return f"${_number(value.mean, fmt)} \\pm {_number(value.half_width, fmt)}$"
    if isinstance(value, Comparison):
        mark = "^{*}" if value.significant else ""
        return (f"${_number(value.difference, fmt, True)}{mark}$ {{\\scriptsize "
                f"$[{_number(value.low, fmt, True)}, {_number(value.high, fmt, True)}]$}}")
    return f"${_number(value, fmt)}$"


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``): a short caption above, the
    conventions as a footnote-size note below the tabular."""
    spec = "".join("r" if c.metric else "l" for c in table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(' '.join([table.title + '.', table.caption]).strip())}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_header(c, latex=True) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        lines.append(" & ".join(_latex_cell(row.get(c.key), c.metric) for c in table.columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines += [r"\par\smallskip\footnotesize", latex_escape(" ".join(table.notes))]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _raw(value: Any) -> list[Any]:
    """A cell's raw CSV values: [value] or [mean, ci95] or [difference, low95, high95]."""
    if isinstance(value, Estimate):
        return [value.mean, "" if value.half_width is None else value.half_width]
    if isinstance(value, Comparison):
        return [value.difference, value.low, value.high]
    return ["" if _missing(value) else value]


def to_csv(table: Table) -> str:
    """Raw values at full precision; an interval adds ``<key>_ci95``, a comparison ``<key>_lo95`` and ``<key>_hi95``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = []
    for column in table.columns:
        kinds = {type(row.get(column.key)) for row in table.rows}
        extra = ["_lo95", "_hi95"] if Comparison in kinds else ["_ci95"] if Estimate in kinds else []
        header.append((column, [""] + extra))
    writer.writerow([c.key + suffix for c, suffixes in header for suffix in suffixes])
    for row in table.rows:
        cells = []
        for column, suffixes in header:
            raw = _raw(row.get(column.key))
            cells += (raw + [""] * len(suffixes))[:len(suffixes)]
        writer.writerow(cells)
    return buffer.getvalue()


def render(tables: list[Table], fmt: str) -> str:
    """Several tables in one format, one after another; CSV blocks are headed by ``# <title>`` lines."""
    if fmt == "csv" and len(tables) > 1:
        return "\n".join(f"# {table.title}\n{to_csv(table)}" for table in tables)
    return "\n".join(WRITERS[fmt](table) for table in tables)


WRITERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv}
