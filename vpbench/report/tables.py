"""A table is a value matrix plus writers: Markdown, LaTeX (booktabs), CSV and HTML from the same rows.

Units and number formats live here and only here (:data:`FORMATS`). A cell holds a number, a
:class:`~vpbench.report.stats.Estimate` (mean ± 95% CI) or a :class:`~vpbench.report.stats.Comparison`
(paired difference ± its interval's half-width, the smallest difference it resolves; ``*`` when the
interval excludes zero). CSV keeps raw values at full precision (an interval's half-width, or a
comparison's bounds and half-width, in their own columns); Markdown and LaTeX print the formatted, scaled values. A missing value prints ``N/A``,
never 0.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from vpbench.measure.catalogue import METRICS
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
    "k": Format(1e-3, 1, "k", "k"),  # parameters at the trained scale, thousands
    "fvd": Format(1.0, 1, "", ""),
    "sum": Format(1.0, 1, "", ""),  # OpenSTL's MSE and MAE, summed over a frame's pixels
}
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
CONVENTIONS = ("PSNR per frame on [0,1] (predictions clipped); SSIM Gaussian σ=1.5, data range 1, channels "
               "averaged; LPIPS AlexNet v0.1 on RGB in [−1, 1], shown ×10⁻²; t is the frame index, frames "
               "1..T_in are context; checkpoints selected on the val split.")


@dataclass
class Column:
    key: str | tuple  # the row dict's key; a tuple (group, name) where a column belongs to a group
    header: str
    metric: str | None = None  # a key of FORMATS for numeric metric columns
    group: str | None = None  # a header spanning neighbouring columns (LaTeX: \cmidrule); None: ungrouped
    short: str | None = None  # the LaTeX header where ``header`` is too long for a paper's column
    latex: bool = True  # False: Markdown and CSV only (a detail a paper's table leaves out)


def column_name(key: str | tuple) -> str:
    """A column key as CSV names it: a tuple's parts joined by ``:``."""
    return ":".join(map(str, key)) if isinstance(key, tuple) else key


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
        return f"{_number(value.difference, fmt, signed=True)} ± {_number(value.half_width, fmt)}{mark}"
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


def _header(column: Column) -> str:
    """The Markdown header: name, group and unit in one cell, e.g. ``PSNR↑ t=6 (dB)``."""
    header = f"{column.header} {column.group}" if column.group else column.header
    unit = FORMATS[column.metric].unit if column.metric else ""
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


_MATH = re.compile(r"×10⁻²|(\d+)\^(\d+)")  # written in math mode, not character by character


def latex_escape(text: str) -> str:
    """Plain text -> LaTeX text: special characters escaped, ``×10⁻²`` and powers such as ``2^20`` set
    in math mode (``$2^{20}$``; escaped character by character they would print a text caret)."""
    pieces, end = [], 0
    for match in _MATH.finditer(text):
        pieces.append("".join(_LATEX_SPECIAL.get(ch, ch) for ch in text[end:match.start()]))
        pieces.append(r"$\times 10^{-2}$" if match.group(1) is None else f"${match.group(1)}^{{{match.group(2)}}}$")
        end = match.end()
    pieces.append("".join(_LATEX_SPECIAL.get(ch, ch) for ch in text[end:]))
    return "".join(pieces)


def _latex_cell(value: Any, metric: str | None) -> str:
    """A cell in LaTeX: numbers in math mode (so a negative one gets a true minus sign, not a hyphen), a
    95% CI as a ``±`` subscript, a comparison as its difference with its half-width as a ``±`` subscript
    and ``*`` when significant."""
    if _missing(value):
        return "--"
    if metric is None:
        return latex_escape(str(value))
    fmt = FORMATS[metric]
    if isinstance(value, Estimate):
        if value.half_width is None:
            return f"${_number(value.mean, fmt)}$"
        return f"${_number(value.mean, fmt)}_{{\\pm {_number(value.half_width, fmt)}}}$"
    if isinstance(value, Comparison):
        star = "^{*}" if value.significant else ""
        return f"${_number(value.difference, fmt, True)}_{{\\pm {_number(value.half_width, fmt)}}}{star}$"
    return f"${_number(value, fmt)}$"


LONG_TEXT = 22  # characters: a longer text cell becomes a note marker (a), (b), ... under the table
ONE_COLUMN_PT = 345.0  # \textwidth of a one-column 10 pt article; wider tables are set as table*
TWO_COLUMN_PT = 469.0  # \textwidth of a two-column 10 pt article: what a table* may fill
_CHAR_PT, _PAD_PT = 4.8, 7.0  # rough width of a footnotesize character and of a column's padding (over-estimates)


def _visible(cell: str) -> str:
    """The characters a LaTeX cell prints, roughly (markup dropped, subscripts counted at 0.7)."""
    text = cell.replace("\\pm", "±").replace("^{*}", "*")
    for token in ("\\textsuperscript{\\dag}", "$", "{", "}", "\\"):
        text = text.replace(token, "")
    main, _, sub = text.partition("_")
    return main + sub[: int(len(sub) * 0.7)]


def _blocks(columns: list[Column], widths: list[float], budget: float) -> list[list[int]]:
    """Column indices (after the row-label column 0) cut into consecutive blocks of at most ``budget`` pt
    with the label column, never splitting a column group unless the group alone is wider."""
    units: list[list[int]] = []
    for index in range(1, len(columns)):
        if units and columns[index].group and columns[index].group == columns[units[-1][-1]].group:
            units[-1].append(index)
        else:
            units.append([index])
    blocks: list[list[int]] = [[]]
    for unit in units:
        pieces = [unit] if widths[0] + sum(widths[i] for i in unit) <= budget else [[i] for i in unit]
        for piece in pieces:
            if blocks[-1] and widths[0] + sum(widths[i] for i in blocks[-1] + piece) > budget:
                blocks.append([])
            blocks[-1] += piece
    return blocks


def _tabular(columns: list[Column], names: list[str], units: list[str], body: list[list[str]]) -> list[str]:
    """One booktabs tabular: the group header over ``\\cmidrule``, names, units, then the rows."""
    spec = "".join("r" if c.metric else "l" for c in columns)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if any(c.group for c in columns):
        spans, rules, start = [], [], 0
        for index in range(1, len(columns) + 1):
            if index == len(columns) or columns[index].group != columns[start].group:
                group, count = columns[start].group, index - start
                spans.append(rf"\multicolumn{{{count}}}{{c}}{{{latex_escape(group)}}}" if group else " & ".join([""] * count))
                if group:
                    rules.append(rf"\cmidrule(lr){{{start + 1}-{index}}}")
                start = index
        lines.append(" & ".join(spans) + r" \\")
        lines.append(" ".join(rules))
    lines.append(" & ".join(names) + r" \\")
    if any(units):
        lines.append(" & ".join(f"({u})" if u else "" for u in units) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(cells) + r" \\" for cells in body]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def to_latex(table: Table) -> str:
    """A booktabs table (``\\usepackage{booktabs}``) in footnote size: a short caption, grouped headers
    over ``\\cmidrule``, units under the names, and the conventions as a note under the tabular.

    Columns with no value or marked ``latex=False`` are left out and long text cells become lettered
    notes. A table wider than a one-column page is set as ``table*`` (the full width of a two-column
    page); one wider than that too is set as several tabulars stacked in the same float, each with the
    row labels and whole column groups, so the text stays at 8 pt and nothing is scaled. Markdown and
    CSV keep everything; the CI half-widths of comparisons are in those.
    """
    columns = [c for c in table.columns if c.latex and any(not _missing(row.get(c.key)) for row in table.rows)]
    columns = columns or table.columns[:1]
    notes, markers = list(table.notes), {}
    body = []
    for row in table.rows:
        cells = []
        for column in columns:
            value = row.get(column.key)
            if column.metric is None and not _missing(value) and len(str(value)) > LONG_TEXT and column is not columns[0]:
                marker = markers.setdefault(str(value), chr(ord("a") + len(markers)))
                cells.append(f"({marker})")
            else:
                cells.append(_latex_cell(value, column.metric))
        body.append(cells)
    notes += [f"({marker}) {text}" for text, marker in markers.items()]

    names = [latex_escape(c.short or c.header) for c in columns]
    units = [FORMATS[c.metric].latex_unit if c.metric else "" for c in columns]
    widths = [max([len(_visible(n)) for n in (name, unit)] + [len(_visible(r[i])) for r in body]) * _CHAR_PT + _PAD_PT
              for i, (name, unit) in enumerate(zip(names, units))]
    environment = "table" if sum(widths) <= ONE_COLUMN_PT else "table*"
    blocks = [list(range(1, len(columns)))] if environment == "table" else _blocks(columns, widths, TWO_COLUMN_PT)
    lines = [rf"\begin{{{environment}}}[t]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{3pt}",
             rf"\caption{{{latex_escape(' '.join([table.title + '.', table.caption]).strip())}}}"]
    for number, block in enumerate(blocks):
        chosen = [0, *block]
        if number:
            lines.append(r"\par\medskip")
        lines += _tabular([columns[i] for i in chosen], [names[i] for i in chosen], [units[i] for i in chosen],
                          [[cells[i] for i in chosen] for cells in body])
    if notes:
        lines += [r"\par\smallskip\parbox{\linewidth}{\footnotesize", latex_escape(" ".join(notes)) + "}"]
    lines.append(rf"\end{{{environment}}}")
    return "\n".join(lines) + "\n"


def _raw(value: Any) -> list[Any]:
    """A cell's raw CSV values: [value] or [mean, ci95] or [difference, low95, high95, half-width95]."""
    if isinstance(value, Estimate):
        return [value.mean, "" if value.half_width is None else value.half_width]
    if isinstance(value, Comparison):
        return [value.difference, value.low, value.high, value.half_width]
    return ["" if _missing(value) else value]


def to_csv(table: Table) -> str:
    """Raw values at full precision; an interval adds ``<key>_ci95``, a comparison ``<key>_lo95``, ``<key>_hi95`` and ``<key>_hw95``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = []
    for column in table.columns:
        kinds = {type(row.get(column.key)) for row in table.rows}
        extra = ["_lo95", "_hi95", "_hw95"] if Comparison in kinds else ["_ci95"] if Estimate in kinds else []
        header.append((column, [""] + extra))
    writer.writerow([column_name(c.key) + suffix for c, suffixes in header for suffix in suffixes])
    for row in table.rows:
        cells = []
        for column, suffixes in header:
            raw = _raw(row.get(column.key))
            cells += (raw + [""] * len(suffixes))[:len(suffixes)]
        writer.writerow(cells)
    return buffer.getvalue()


def to_html(table: Table) -> str:
    """An HTML ``<table>`` with the Markdown's cells (intervals and ``*`` marks included): column groups
    as a spanning header row, units in the header, the caption and notes under it. No script, no style
    of its own: the page it sits in styles it."""
    esc = html.escape
    lines = [f"<h3>{esc(table.title)}</h3>", '<div class="scroll"><table>', "<thead>"]
    if any(c.group for c in table.columns):
        cells, start = [], 0
        for index in range(1, len(table.columns) + 1):
            if index == len(table.columns) or table.columns[index].group != table.columns[start].group:
                group = table.columns[start].group
                cells.append(f'<th colspan="{index - start}">{esc(group or "")}</th>')
                start = index
        lines.append('<tr class="groups">' + "".join(cells) + "</tr>")
    units = [FORMATS[c.metric].unit if c.metric else "" for c in table.columns]
    lines.append("<tr>" + "".join(f"<th>{esc(c.header)}{f' ({esc(unit)})' if unit else ''}</th>"
                                  for c, unit in zip(table.columns, units)) + "</tr>")
    lines.append("</thead>")
    lines.append("<tbody>")
    for row in table.rows:
        cells = []
        for column in table.columns:
            text = _formatted(row.get(column.key), column.metric)
            kind = ' class="num"' if column.metric else ""
            cells.append(f"<td{kind}>{esc(text)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table></div>"]
    if table.caption:
        lines.append(f'<p class="caption">{esc(table.caption)}</p>')
    if table.notes:
        lines.append('<ul class="notes">' + "".join(f"<li>{esc(note)}</li>" for note in table.notes) + "</ul>")
    return "\n".join(lines) + "\n"


def render(tables: list[Table], fmt: str) -> str:
    """Several tables in one format, one after another; CSV blocks are headed by ``# <title>`` lines."""
    if fmt == "csv" and len(tables) > 1:
        return "\n".join(f"# {table.title}\n{to_csv(table)}" for table in tables)
    return "\n".join(WRITERS[fmt](table) for table in tables)


WRITERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv, "html": to_html}
