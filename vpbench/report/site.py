"""The static site, ``vpbench site --out DIR``: every suite's tables, plots, sample strips and runs as HTML.

Rendered from the store or from exported folders (``--from``), never by training: plain HTML and one
style sheet, no script, no font and no file from the network, so the pages work from ``file://`` as
from any static host. Pictures already on disk (an export's plots and strips) are linked where they
lie, not copied; what the site must draw itself (a store's plots, strips and per-run samples) it
writes under ``DIR``.

    DIR/index.html                    the suites: layout, version, scale, seeds, data sets, when run, vpbench version
    DIR/style.css
    DIR/<suite>/index.html            its tables (linking their Markdown, LaTeX and CSV), plots, strips and runs
    DIR/<suite>/runs/<run id>.html    one run: identity, metrics per step, validation curve, profile, config, manifest
    DIR/runs/index.html               the store's complete runs that belong to no suite (store only)
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from vpbench.errors import VpbenchError
from vpbench.measure.catalogue import METRICS
from vpbench.report import records as record_io
from vpbench.report.layouts import suite_tables
from vpbench.report.plots import suite_plots
from vpbench.report.samples import datasets_with_samples, suite_strip
from vpbench.report.tables import FORMATS, METRIC_LABELS, Table, render, runs_table, to_html
from vpbench.report.suite_record import SuiteRecord

TABLE_FILES = {"markdown": "table.md", "latex": "table.tex", "csv": "table.csv"}
NOT_RECORDED = "not recorded in this export"

STYLE = """\
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1, h2, h3 { font-weight: 600; }
h3 { margin-bottom: 0.3em; }
nav { font-size: 0.9em; margin-bottom: 1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.groups th { text-align: center; border-bottom: 1px solid #999; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
.caption, .notes, .meta { font-size: 0.85em; color: #444; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figure.plot { max-width: 48%; }
figcaption { font-size: 0.8em; color: #555; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
svg text { font-family: sans-serif; font-size: 11px; }
"""


@dataclass
class SuiteResults:
    """One suite's results, as the site reads them: from an export folder or from the store."""

    suite: SuiteRecord
    runs: pd.DataFrame  # :mod:`vpbench.report.records`' runs frame, one row per run
    clips: pd.DataFrame  # its clips frame, one row per run and test clip
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_id -> {"config", "manifest"} where known
    folder: Path | None = None  # the export they came from (its tables, plots and strips are linked); None: a store
    records: list[dict[str, Any]] | None = None  # store records (their run folders hold the sample strips and GIFs)
    origin: str = ""  # the export folder or the store they came from (pages show it relative to themselves)


def from_exports(folders: list[Path], names: list[str] | None = None) -> list[SuiteResults]:
    """The suites exported to ``folders``: each an export (``runs.csv`` beside ``suite.json``) or a folder of
    exports such as ``leaderboards/``; ``names`` keeps only those suites."""
    exports: list[Path] = []
    for folder in folders:
        if (folder / record_io.RUNS_CSV).is_file():
            exports.append(folder)
        elif folder.is_dir():
            exports += sorted(p for p in folder.iterdir() if (p / record_io.RUNS_CSV).is_file())
        else:
            raise VpbenchError(f"--from {folder}: not a folder")
    if not exports:
        raise VpbenchError(f"--from {', '.join(map(str, folders))}: no exported suite there (a folder with "
                           f"{record_io.RUNS_CSV} and {record_io.SUITE_JSON}, written by `vpbench export`)")
    results = []
    for folder in exports:
        definition = record_io.suite_definition_in(folder)
        if definition is None:
            raise VpbenchError(f"{folder / record_io.SUITE_JSON} not found: the site needs the suite as it ran "
                               "(export it again with `vpbench export`)")
        suite = SuiteRecord.from_record(definition)
        if names and suite.name not in names:
            continue
        runs, clips = record_io.from_csv(folder)
        results.append(SuiteResults(suite, runs, clips, record_io.details_in(folder), folder, None, str(folder)))
    return results


def from_store(store, names: list[str] | None = None) -> tuple[list[SuiteResults], pd.DataFrame]:
    """The store's suites (``names``, default every suite it recorded) and its complete runs in no suite."""
    recorded = store.suites()
    for name in names or []:
        if name not in recorded:
            raise VpbenchError(f"--suite {name}: {store.path} holds no run of that suite "
                               f"(it holds: {', '.join(recorded) or 'none'})")
    results, members = [], set()
    for name in names or recorded:
        suite = SuiteRecord.from_record(store.suite_definition(name))
        runs, clips = record_io.from_store(store, suite)
        suite_records = store.runs(suite=suite.name, status="complete")
        members |= {r["run_id"] for r in suite_records}
        results.append(SuiteResults(suite, runs, clips, record_io.details(store, suite), None, suite_records,
                                    str(store.path)))
    loose = [r for r in store.runs(status="complete") if r["run_id"] not in members] if not names else []
    return results, pd.DataFrame([record_io.flatten(r, "", 0, 0) for r in loose])


# --------------------------------------------------------------------------- pages


def _link(target: Path, page: Path) -> str:
    """``target`` relative to the folder of ``page``, as a URL path."""
    return quote(Path(os.path.relpath(target.resolve(), page.parent.resolve())).as_posix())


def _page(path: Path, title: str, body: list[str], root: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    home = _link(root / "index.html", path)
    text = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',  # no favicon request
            f'<link rel="stylesheet" href="{_link(root / "style.css", path)}">',
            f"<title>{html.escape(title)}</title>", "</head>", "<body>",
            f'<nav><a href="{home}">vpbench results</a></nav>', f"<h1>{html.escape(title)}</h1>", *body,
            "</body>", "</html>"]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    """A raw value as text: N/A when missing, floats to 6 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def _pairs(rows: list[tuple[str, Any]]) -> str:
    """A two-column table of (name, value)."""
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_cell(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _figure(image: Path, page: Path, caption: str, kind: str = "", pdf: bool = False) -> str:
    """An image linking to itself, and to its PDF beside it when ``pdf`` (plots the site drew itself: an
    export's PDFs are not committed, so a link to one would depend on the machine)."""
    extra = f' (<a href="{_link(image.with_suffix(".pdf"), page)}">PDF</a>)' if pdf else ""
    return (f'<figure class="{kind}"><a href="{_link(image, page)}"><img src="{_link(image, page)}" alt="{html.escape(caption)}">'
            f"</a><figcaption>{html.escape(caption)}{extra}</figcaption></figure>")


def _when(runs: pd.DataFrame) -> str:
    times = runs["finished_at"].dropna().astype(str) if "finished_at" in runs else []
    return f"{min(times)[:10]} to {max(times)[:16].replace('T', ' ')} UTC" if len(times) else NOT_RECORDED


def _versions(runs: pd.DataFrame) -> str:
    values = sorted(runs["vpbench_version"].dropna().astype(str).unique()) if "vpbench_version" in runs else []
    return ", ".join(values) if values else NOT_RECORDED


def _seeds(runs: pd.DataFrame) -> str:
    seeds = sorted(int(s) for s in runs["seed"].dropna().unique()) if "seed" in runs else []
    return f"{len(seeds)} ({', '.join(map(str, seeds))})" if seeds else "none"


def _scales(runs: pd.DataFrame) -> str:
    return ", ".join(sorted(runs["scale"].dropna().astype(str).unique())) if "scale" in runs else ""


def _datasets(result: SuiteResults) -> list[str]:
    present = set(result.runs["dataset"]) if "dataset" in result.runs else set()
    return [d for d in result.suite.datasets if d in present]


def validation_svg(curve: list[tuple[int, float]], selected: Any = None, converged: Any = None,
                   metric: str = "mse") -> str:
    """A run's validation ``metric`` (its ``train.val_metric``: mse or lpips) against step as inline SVG (log
    scale), the selected step ringed and the step early stopping ended training at marked by a vertical line;
    empty for no curve."""
    if not curve:
        return ""
    name = metric.upper()
    width, height, left, right, top, bottom = 520, 220, 64, 12, 12, 36
    steps = [s for s, _ in curve]
    logs = [math.log10(v) for _, v in curve if v > 0]
    if not logs:
        return ""
    x0, x1 = 0, max(steps)
    y0, y1 = min(logs), max(logs)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.05, y1 + 0.05

    def x(step: float) -> float:
        return left + (width - left - right) * (step - x0) / max(1, x1 - x0)

    def y(value: float) -> float:
        return top + (height - top - bottom) * (y1 - math.log10(value)) / (y1 - y0)

    points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in curve if v > 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="validation {name} against training step">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="none" stroke="#999"/>',
             f'<polyline points="{points}" fill="none" stroke="#0072b2" stroke-width="1.5"/>']
    for value in (10 ** y0, 10 ** y1):
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.3g}</text>')
    for step in (x0, x1):
        parts.append(f'<text x="{x(step):.1f}" y="{height - bottom + 14}" text-anchor="middle">{step}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle">training step'
                 "</text>")
    parts.append(f'<text x="12" y="{(top + height - bottom) / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(top + height - bottom) / 2:.1f})">val {name} (log)</text>')
    chosen = {int(s): v for s, v in curve}
    if selected is not None and not pd.isna(selected) and int(selected) in chosen:
        step = int(selected)
        parts.append(f'<circle cx="{x(step):.1f}" cy="{y(chosen[step]):.1f}" r="5" fill="none" stroke="#d55e00" '
                     'stroke-width="2"><title>selected (best validation)</title></circle>')
    if converged is not None and not pd.isna(converged):
        parts.append(f'<line x1="{x(float(converged)):.1f}" x2="{x(float(converged)):.1f}" y1="{top}" '
                     f'y2="{height - bottom}" stroke="#009e73" stroke-dasharray="4 3"><title>early stopping'
                     "</title></line>")
    parts.append("</svg>")
    return "".join(parts)


def _metric_table(row: dict[str, Any]) -> str:
    """The run's metrics per predicted frame (t = context + k) and over the horizon, in the tables' units."""
    context, horizon = int(row["context"]), int(row["horizon"])
    header = "".join(f"<th>t={context + k}</th>" for k in range(1, horizon + 1)) + "<th>mean</th>"
    lines = []
    for metric in METRICS:
        fmt = FORMATS[metric]
        values = [row.get(f"{metric}@{k}") for k in range(1, horizon + 1)] + [row.get(f"{metric}_mean")]
        cells = "".join(f'<td class="num">{"N/A" if v is None or pd.isna(v) else f"{v * fmt.scale:.{fmt.digits}f}"}'
                        "</td>" for v in values)
        unit = f" ({fmt.unit})" if fmt.unit else ""
        lines.append(f"<tr><th>{METRIC_LABELS[metric]}{unit}</th>{cells}</tr>")
    return f'<div class="scroll"><table><tr><th></th>{header}</tr>{"".join(lines)}</table></div>'


PROFILE_FIELDS = ("params", "params_without_norm", "macs_per_sample", "macs_per_step_mean", "flops_per_sample",
                  "elementwise_flops_per_sample", "fvcore_macs_per_sample", "latency_b1_median_ms",
                  "latency_b1_iqr_ms", "latency_b1_samples", "latency_tp_batch", "latency_tp_median_ms",
                  "peak_memory_mb", "profile_device", "profile_note", "paper_params_without_norm",
                  "paper_macs_per_step_mean", "paper_macs_per_sample", "paper_height", "paper_width")
IDENTITY_FIELDS = ("label", "model", "config", "dataset", "scale", "seed", "task", "loss", "run_id", "status",
                   "wall_s", "finished_at", "vpbench_version", "git_commit", "height", "width", "context", "horizon")


def _run_page(row: dict[str, Any], result: SuiteResults, folder: Path, root: Path) -> Path:
    run_id = str(row["run_id"])
    path = folder / f"{run_id}.html"
    suite_page = folder.parent / "index.html"
    body = [f'<p class="meta"><a href="{_link(suite_page, path)}">suite {html.escape(result.suite.name)}</a> · '
            f"{html.escape(str(row.get('dataset')))} · seed {html.escape(_cell(row.get('seed')))}</p>",
            "<h2>Run</h2>", _pairs([(k, row.get(k)) for k in IDENTITY_FIELDS if k in row])]
    if row.get("task", "train") == "train":
        body += ["<h2>Test metrics</h2>", _metric_table(row)]
        converged = row.get("converged_at")
        reason = record_io.stopping({"steps": row.get("steps_trained"), "max_steps": row.get("max_steps"),
                                     "converged_at": converged})["stop_reason"]
        stopped = {None: "trains nothing", "budget": "the step budget ran out (not converged)",
                   "plateau at the budget": "the plateau rule, at the budget's last step (not counted as converged)",
                   "plateau": "the plateau rule, before the budget (converged)"}[reason]
        body += ["<h2>Training</h2>", _pairs([
            ("steps trained", row.get("steps_trained")), ("step budget", row.get("max_steps")),
            ("how it stopped", stopped), ("learning-rate drops at", row.get("lr_drop_steps")),
            ("selected step (best validation)", row.get("selected_step")),
            ("patience", row.get("patience")), ("min_delta", row.get("min_delta"))])]
        curve = record_io.parse_curve(row.get("val_curve"))
        metric = row.get("val_metric") if isinstance(row.get("val_metric"), str) else "mse"
        svg = validation_svg(curve, row.get("selected_step"), converged, metric)
        body.append(svg or "<p>No validation curve (nothing trained, or stored before curves were).</p>")
    body += ["<h2>Profile</h2>", _pairs([(k, row.get(k)) for k in PROFILE_FIELDS if k in row])]
    samples = _run_samples(result, run_id, folder / run_id)
    if samples:
        body += ["<h2>Test sample</h2>"] + [_figure(image, path, caption) for image, caption in samples]
    detail = result.details.get(run_id)
    for key in ("config", "manifest"):
        body.append(f"<h2>{'Resolved config' if key == 'config' else 'Environment manifest'}</h2>")
        if detail and detail.get(key) is not None:
            body.append(f"<pre>{html.escape(json.dumps(detail[key], indent=1, ensure_ascii=False))}</pre>")
        else:
            body.append(f"<p>{NOT_RECORDED} (exports from before records.json hold none; the store does).</p>")
    return _page(path, f"{row.get('label')} (seed {_cell(row.get('seed'))}) {run_id}", body, root)


def _run_samples(result: SuiteResults, run_id: str, folder: Path) -> list[tuple[Path, str]]:
    """The run's first test sample (strip and GIF): linked where an export keeps it
    (:func:`vpbench.report.records.sample_folder`), or copied beside its page from its run folder (a store)."""
    captions = ((".png", "test clip 0: context | truth above, prediction below"),
                (".gif", "test clip 0, frame by frame: truth | prediction"))
    if result.folder is not None:
        kept = record_io.sample_folder(result.folder, run_id)
        return [(kept / f"test000{suffix}", caption) for suffix, caption in captions
                if (kept / f"test000{suffix}").is_file()]
    record = next((r for r in result.records or [] if r["run_id"] == run_id), None)
    if record is None or not record.get("run_dir"):
        return []
    found = []
    for suffix, caption in captions:
        source = Path(record["run_dir"]) / "samples" / f"test000{suffix}"
        if source.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / source.name
            shutil.copyfile(source, target)
            found.append((target, caption))
    return found


def _suite_pictures(result: SuiteResults, folder: Path) -> tuple[list[Path], list[Path]]:
    """``(plots, strips)``: an export's own PNGs and GIFs, or, from a store, drawn into ``folder``."""
    if result.folder is not None:
        plots = sorted((result.folder / "plots").glob("*.png"))
        strips = sorted(p for p in result.folder.iterdir() if p.suffix in (".png", ".gif"))
        if not plots and not (result.folder / "plots").is_dir():
            plots = [p for p in suite_plots(result.runs, result.suite, folder / "plots") if p.suffix == ".png"]
        return plots, strips
    plots = [p for p in suite_plots(result.runs, result.suite, folder / "plots") if p.suffix == ".png"]
    strips = []
    for dataset in datasets_with_samples(result.records or [], result.suite):
        try:
            image = suite_strip(result.records, result.suite, dataset, 0)
        except VpbenchError:  # a run without sample images: its page says so
            continue
        folder.mkdir(parents=True, exist_ok=True)
        strips.append(folder / f"samples_{dataset}.png")
        image.save(strips[-1])
    return plots, strips


def _table_links(result: SuiteResults, tables: list[Table], folder: Path, page: Path) -> str:
    """Links to the suite's tables as Markdown, LaTeX and CSV: an export's files, else written into ``folder``."""
    links = []
    for fmt, name in TABLE_FILES.items():
        target = result.folder / name if result.folder is not None else folder / name
        if result.folder is None or not target.is_file():
            target = folder / name
            target.write_text(render(tables, fmt), encoding="utf-8")
        links.append(f'<a href="{_link(target, page)}">{fmt}</a>')
    return "<p>The tables as " + ", ".join(links) + ".</p>"


def _suite_site(result: SuiteResults, folder: Path, root: Path) -> list[Path]:
    suite, runs = result.suite, result.runs
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "index.html"
    tables = suite_tables(runs, result.clips, suite, paper=True)
    plots, strips = _suite_pictures(result, folder)
    body = [f"<p>{html.escape(suite.description)}</p>" if suite.description else "",
            _pairs([("version", suite.version), ("layout", suite.layout), ("reference row", suite.reference),
                    ("scale", _scales(runs)), ("seeds", _seeds(runs)), ("data sets", ", ".join(_datasets(result))),
                    ("runs", len(runs)), ("when run", _when(runs)), ("vpbench version", _versions(runs)),
                    ("read from", _link(Path(result.origin), page))]),
            "<h2>Tables</h2>", _table_links(result, tables, folder, page), *[to_html(t) for t in tables]]
    if plots:
        body.append("<h2>Plots</h2>")
        for dataset in [*suite.datasets, None]:
            chosen = [p for p in plots if (dataset is None and not any(p.stem.endswith(f"_{d}") for d in suite.datasets))
                      or (dataset is not None and p.stem.endswith(f"_{dataset}"))]
            if chosen:
                body.append(f"<h3>{html.escape(dataset or 'other')}</h3>")
                body += [_figure(p, page, p.stem.replace("_", " "), "plot", pdf=p.with_suffix(".pdf").is_file()
                                 and p.is_relative_to(folder)) for p in chosen]
    if strips:
        body.append("<h2>Sample strips</h2>")
        body += [_figure(p, page, p.stem.replace("_", " ")) for p in strips]
    pages = [page]
    run_rows = runs.to_dict("records")
    run_folder = folder / "runs"
    listing = []
    for row in run_rows:
        run_page = _run_page(row, result, run_folder, root)
        pages.append(run_page)
        converged = row.get("converged_at")
        stopped = ("" if not row.get("steps_trained") else
                   f"{_cell(row.get('steps_trained'))}{'' if not pd.isna(converged) else '†'}")
        listing.append(f'<tr><td>{html.escape(str(row.get("label")))}</td><td>{html.escape(str(row.get("dataset")))}'
                       f'</td><td>{_cell(row.get("seed"))}</td><td><a href="{_link(run_page, page)}">'
                       f'{html.escape(str(row["run_id"]))}</a></td><td>{html.escape(stopped)}</td>'
                       f'<td class="num">{_cell(row.get("psnr_mean"))}</td></tr>')
    body += ["<h2>Runs</h2>", "<p class=\"meta\">Stopped: steps trained († = the step budget ran out before early "
             "stopping). PSNR in dB over the horizon.</p>",
             "<table><tr><th>Row</th><th>Data set</th><th>Seed</th><th>Run</th><th>Stopped</th><th>PSNR</th></tr>" +
             "".join(listing) + "</table>"]
    _page(page, f"Suite {suite.name} v{suite.version}", body, root)
    return pages


def build(results: list[SuiteResults], out: Path, loose: pd.DataFrame | None = None) -> list[Path]:
    """Write the site for ``results`` (and a page of ``loose`` runs in no suite) under ``out``; its pages."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "style.css").write_text(STYLE, encoding="utf-8")
    pages, rows = [], []
    for result in results:
        folder = out / quote(result.suite.name, safe="")
        pages += _suite_site(result, folder, out)
        runs = result.runs
        rows.append(f'<tr><td><a href="{_link(folder / "index.html", out / "index.html")}">'
                    f"{html.escape(result.suite.name)}</a></td><td>{result.suite.version}</td>"
                    f"<td>{html.escape(result.suite.layout)}</td><td>{html.escape(_scales(runs))}</td>"
                    f"<td>{html.escape(_seeds(runs))}</td><td>{html.escape(', '.join(_datasets(result)))}</td>"
                    f"<td>{len(runs)}</td><td>{html.escape(_when(runs))}</td><td>{html.escape(_versions(runs))}</td>"
                    f"<td>{html.escape(result.suite.description[:160])}</td></tr>")
    body = ["<p>Every number here was computed from a results store or from the CSV it was exported to, by "
            "<code>vpbench site</code>; nothing on these pages is typed in by hand.</p>",
            "<table><tr><th>Suite</th><th>Version</th><th>Layout</th><th>Scale</th><th>Seeds</th><th>Data sets</th>"
            "<th>Runs</th><th>When run</th><th>vpbench</th><th>Description</th></tr>" + "".join(rows) + "</table>"]
    if loose is not None and not loose.empty:
        runs_page = out / "runs" / "index.html"
        _page(runs_page, "Runs in no suite", [to_html(runs_table(loose, "Complete runs that belong to no suite"))], out)
        pages.append(runs_page)
        body.append(f'<p><a href="{_link(runs_page, out / "index.html")}">{len(loose)} complete run(s) in no suite'
                    "</a></p>")
    pages.insert(0, _page(out / "index.html", "vpbench results", body, out))
    return pages
