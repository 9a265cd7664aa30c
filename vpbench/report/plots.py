"""Plots of a suite from its ``runs`` frame, seaborn-styled in a colour-blind-safe palette, each written as
PNG and PDF. Every title names the suite, its version, the scale, the data set and the seeds; legends
sit outside the axes; each row keeps one colour in every plot of its suite (its place in the suite), and
a row that trains nothing (copy-last) is a black reference line, dashed, dotted or dash-dotted when
there are several.

* ``curves_<dataset>``: PSNR, SSIM and LPIPS per predicted frame, mean over seeds with a 95% band.
* ``cost_<dataset>``: mean PSNR against MACs per sample and against batch-1 latency, both at the
  run's geometry and on the run's device; the Pareto front (no other model is cheaper and better) is
  drawn and its points ringed; point labels are moved apart by adjustText.
* ``bars_<dataset>``: PSNR and LPIPS per row, a point with its 95% interval as an error bar (no bar
  whose length would depend on where the axis starts; ablation and losses suites).
* ``profile_<dataset>``: MACs per step and batch-1 latency per model (profile suite, log scale); both
  panels list every row, with "not measured (why)" where a value is missing.
* ``convergence_<dataset>``: validation MSE against training step, one line per run (a colour per row,
  a line style per seed, both in the legend); a filled dot where the plateau rule ended the run before
  its budget (converged), an open one where it did not (the budget ended it, or the rule fired only at
  its last step).

:func:`suite_figures` draws them (tests inspect the figures); :func:`suite_plots` writes them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from adjustText import adjust_text  # noqa: E402

from vpbench.measure.catalogue import METRICS  # noqa: E402
from vpbench.report.layouts import converged, row_labels  # noqa: E402
from vpbench.report.records import column_or, parse_curve  # noqa: E402
from vpbench.report.stats import mean_ci  # noqa: E402
from vpbench.report.tables import FORMATS, METRIC_LABELS, arrow  # noqa: E402
from vpbench.report.suite_record import SuiteRecord  # noqa: E402


Drawn = tuple[str, plt.Figure]  # a plot's file stem and its figure


def _save(figure: plt.Figure, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    figure.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    figure.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(figure)
    return paths


def _title(suite: SuiteRecord, subset: pd.DataFrame, dataset: str, what: str) -> str:
    """``<suite> v<N>, <scale> scale: <what> on <dataset>, <n> seed(s)``: what a reader needs to tell plots apart."""
    scale = "/".join(sorted(subset["scale"].dropna().astype(str).unique())) or "?"
    return f"{suite.name} v{suite.version}, {scale} scale: {what} on {dataset}, {subset['seed'].nunique()} seed(s)"


EXTRA_COLOURS = ["#332288", "#882255"]  # Paul Tol's indigo and wine: unlike any of the ten, for rows 11 and 12


def _palette(n: int) -> list:
    """Colour-blind-safe colours (seaborn's ``colorblind``, then :data:`EXTRA_COLOURS`), distinct for up to
    twelve rows (the leaderboard's), repeated past them."""
    base = [*sns.color_palette("colorblind", 10).as_hex(), *EXTRA_COLOURS]
    return [base[i % len(base)] for i in range(n)]


REFERENCE_STYLES = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]  # black lines of rows that train nothing


def _colours(runs: pd.DataFrame, suite: SuiteRecord) -> dict[str, object]:
    """Every row's colour, fixed by its place among the suite's rows (so the same in every plot and data set)."""
    labels = row_labels(runs, suite)
    return dict(zip(labels, _palette(len(labels))))


def _reference_style(subset: pd.DataFrame, suite: SuiteRecord, label: str) -> object:
    """The line style of an untrained row: one per such row, in suite order."""
    untrained = [row for row in row_labels(subset, suite) if _untrained(subset, row)]
    return REFERENCE_STYLES[untrained.index(label) % len(REFERENCE_STYLES)]


def _untrained(subset: pd.DataFrame, label: str) -> bool:
    """A row that trains nothing (copy-last): drawn as the reference, dashed black."""
    group = subset[subset["label"] == label]
    return "steps_trained" in group and bool(len(group)) and group["steps_trained"].fillna(-1).eq(0).all()


def _axis_label(metric: str) -> str:
    fmt = FORMATS[metric]
    label = f"{METRIC_LABELS[metric]} ({fmt.unit})" if fmt.unit else METRIC_LABELS[metric]
    return f"{label} {arrow(metric)}"


def pareto_front(costs: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both lower cost and higher quality, by cost."""
    order = np.argsort(costs, kind="stable")
    front, best = [], -np.inf
    for index in order:
        if quality[index] > best:
            front.append(index)
            best = quality[index]
    return np.asarray(front, dtype=int)


def curves(runs: pd.DataFrame, suite: SuiteRecord, dataset: str) -> Drawn | None:
    subset = runs[(runs["dataset"] == dataset) & (runs["task"] == "train")]
    context, horizon = int(subset["context"].iloc[0]), int(subset["horizon"].iloc[0])
    figure, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    colours = _colours(runs, suite)
    for label in row_labels(subset, suite):
        group = subset[subset["label"] == label]
        reference = _untrained(subset, label)
        colour, style = ("black", _reference_style(subset, suite, label)) if reference else (colours[label], "-")
        for axis, metric in zip(axes, METRICS):
            scale = FORMATS[metric].scale
            estimates = [mean_ci(group.get(f"{metric}@{k}", [])) for k in range(1, horizon + 1)]
            if any(e is None for e in estimates):
                continue
            t = np.arange(context + 1, context + horizon + 1)
            mean = np.array([e.mean for e in estimates]) * scale
            half = np.array([e.half_width or 0.0 for e in estimates]) * scale
            axis.plot(t, mean, linestyle=style, marker="o", markersize=3, color=colour, label=label)
            axis.fill_between(t, mean - half, mean + half, color=colour, alpha=0.15, linewidth=0)
    for axis, metric in zip(axes, METRICS):
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_xlabel("frame t")
        axis.set_ylabel(_axis_label(metric))
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.suptitle(_title(suite, subset, dataset, "metrics per predicted frame (mean, 95% band)"), fontsize=10)
    figure.tight_layout()
    return f"curves_{dataset}", figure


def cost(runs: pd.DataFrame, suite: SuiteRecord, dataset: str) -> Drawn | None:
    subset = runs[(runs["dataset"] == dataset) & (runs["task"] == "train")]
    points, references = [], []
    for label in row_labels(subset, suite):
        group = subset[subset["label"] == label]
        quality = mean_ci(group["psnr_mean"])
        if quality is None:
            continue
        if _untrained(subset, label):  # copy-last: a horizontal reference line, not a point on the front
            references.append((label, quality.mean))
            continue
        points.append((label, group["macs_per_sample"].mean(), group["latency_b1_median_ms"].mean(), quality))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, index, xlabel in ((axes[0], 1, "MACs per sample (G, batch 1, run geometry)"),
                                (axes[1], 2, "latency, batch 1, median (ms)")):
        usable = [p for p in points if np.isfinite(p[index]) and p[index] > 0]
        if not usable:
            axis.set_axis_off()
            continue
        x = np.array([p[index] for p in usable]) / (1e9 if index == 1 else 1.0)
        y = np.array([p[3].mean for p in usable])
        err = np.array([p[3].half_width or 0.0 for p in usable])
        axis.errorbar(x, y, yerr=err, fmt="o", color="#0072B2", ecolor="0.6", capsize=2)
        front = pareto_front(x, y)
        axis.plot(x[front], y[front], "-", color="#D55E00", linewidth=1, label="Pareto front")
        axis.scatter(x[front], y[front], s=80, facecolors="none", edgecolors="#D55E00")
        for label, level in references:
            axis.axhline(level, color="black", linestyle=_reference_style(subset, suite, label), linewidth=1,
                         label=f"{label} (no learned cost)")
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel("PSNR (dB), mean over the horizon ↑")
        texts = [axis.text(xi, yi, label, fontsize=6) for (label, *_), xi, yi in zip(usable, x, y)]
        # a fixed iteration budget (adjustText's default is 1 s of wall time, so layouts depended on machine load);
        # at 1000 iterations two ablation labels stayed overlapping on this machine, at 500, 2000 and 5000 none
        adjust_text(texts, ax=axis, iter_lim=2000, arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.5})
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.suptitle(_title(suite, subset, dataset, "quality against cost"), fontsize=10)
    figure.tight_layout()
    return f"cost_{dataset}", figure


def bars(runs: pd.DataFrame, suite: SuiteRecord, dataset: str) -> Drawn | None:
    subset = runs[(runs["dataset"] == dataset) & (runs["task"] == "train")]
    labels = row_labels(subset, suite)
    colours = _colours(runs, suite)
    figure, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(labels) + 1.5))
    for axis, metric in zip(axes, ("psnr", "lpips")):
        scale = FORMATS[metric].scale
        estimates = [mean_ci(subset[subset["label"] == label][f"{metric}_mean"]) for label in labels]
        shown = [(label, e) for label, e in zip(labels, estimates) if e is not None]
        for y, (label, e) in enumerate(shown):  # a point and its interval: no bar to start anywhere
            colour = "black" if _untrained(subset, label) else colours[label]
            axis.errorbar(e.mean * scale, y, xerr=(e.half_width or 0) * scale, fmt="o", color=colour, capsize=3,
                          markersize=5)
        axis.set_yticks(np.arange(len(shown)), [label for label, _ in shown])
        axis.set_ylim(len(shown) - 0.5, -0.5)
        axis.set_xlabel(_axis_label(metric))
    figure.suptitle(_title(suite, subset, dataset, "mean and 95% CI over seeds (points with error bars)"), fontsize=10)
    figure.tight_layout()
    return f"bars_{dataset}", figure


def profile_bars(runs: pd.DataFrame, suite: SuiteRecord, dataset: str) -> Drawn | None:
    subset = runs[runs["dataset"] == dataset]
    labels = [label for label in row_labels(subset, suite)]
    first = subset.groupby("label").first()
    figure, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(labels) + 1.5))
    for axis, column, scale, xlabel in ((axes[0], "macs_per_step_mean", 1e-9, "MACs per recurrent step (G)"),
                                        (axes[1], "latency_b1_median_ms", 1.0, "latency, batch 1, median (ms)")):
        values = [first.loc[label, column] * scale if label in first.index else np.nan for label in labels]
        measured = [v if np.isfinite(v) and v > 0 else np.nan for v in values]
        y = np.arange(len(labels))
        axis.barh(y, np.nan_to_num(measured, nan=0.0), color=sns.color_palette("flare", max(1, len(labels))))
        axis.set_yticks(y, labels)
        axis.invert_yaxis()
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        finite = [v for v in measured if np.isfinite(v)]
        for row, value, label in zip(y, measured, labels):  # every panel lists every row; a gap says why
            if not np.isfinite(value):
                why = first.loc[label, "profile_note"] if label in first.index else None
                reason = "no MACs" if column == "macs_per_step_mean" else "skipped"
                text = f"not measured ({reason if not isinstance(why, str) else why[:40]})"
                axis.text(min(finite) if finite else 1.0, row, " " + text, va="center", fontsize=6, color="0.3")
    height, width = int(first["height"].iloc[0]), int(first["width"].iloc[0])
    figure.suptitle(_title(suite, subset, dataset, f"cost at {height}x{width}, batch 1"), fontsize=10)
    figure.tight_layout()
    return f"profile_{dataset}", figure


def convergence(runs: pd.DataFrame, suite: SuiteRecord, dataset: str) -> Drawn | None:
    """Every run's validation curve, one panel per val metric (``val_metric``: MSE, or LPIPS for rows with a
    perceptual objective), so no axis mixes the two."""
    subset = runs[(runs["dataset"] == dataset) & (runs["task"] == "train")]
    if "val_curve" not in subset or subset["val_curve"].map(parse_curve).map(len).sum() == 0:
        return None  # nothing trained (copy-last only), or runs stored before curves were
    labels = [label for label in row_labels(subset, suite) if not _untrained(subset, label)]
    metric = column_or(subset, "val_metric", "mse")
    panels = [m for m in ("mse", "lpips") if (metric[subset["label"].isin(labels)] == m).any()]
    colours = _colours(runs, suite)
    seeds = sorted(subset["seed"].unique().tolist())
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    style_of = {seed: styles[i % len(styles)] for i, seed in enumerate(seeds)}
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 + 3.3 * len(panels), 4.2), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        for label in labels:
            colour = colours[label]
            for _, run in subset[(subset["label"] == label) & (metric == panel)].sort_values("seed").iterrows():
                curve = parse_curve(run["val_curve"])
                if not curve:
                    continue
                steps, losses = zip(*curve)
                axis.plot(steps, losses, linestyle=style_of[run["seed"]], color=colour, linewidth=1)
                axis.plot(steps[-1], losses[-1], "o", color=colour, markersize=4,
                          markerfacecolor=colour if converged(run) else "white")
        axis.set_yscale("log")
        axis.set_xlabel("training step")
        axis.set_ylabel(f"validation {panel.upper()} (horizon, autoregressive) ↓")
    handles = [matplotlib.lines.Line2D([], [], color=colours[label], linewidth=2, label=label) for label in labels]
    handles += [matplotlib.lines.Line2D([], [], color="0.3", linestyle=style_of[seed], linewidth=1, label=f"seed {seed}")
                for seed in seeds]
    handles += [matplotlib.lines.Line2D([], [], color="0.3", marker="o", linestyle="none", label=text,
                                        markerfacecolor=face)
                for text, face in (("converged (plateau rule)", "0.3"), ("not converged (budget)", "white"))]
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    figure.suptitle(_title(suite, subset, dataset, "validation loss"), fontsize=9)
    return f"convergence_{dataset}", figure


def suite_figures(runs: pd.DataFrame, suite: SuiteRecord) -> list[Drawn]:
    """``(file stem, figure)`` of every plot of the suite's layout, for every data set with results."""
    sns.set_theme(style="whitegrid", context="paper")
    kinds = {"profile": (profile_bars,), "ablation": (curves, convergence, cost, bars),
             "leaderboard": (curves, convergence, cost), "runs": (curves, convergence, cost),
             "losses": (curves, convergence, bars)}[suite.layout]
    figures = []
    for dataset in suite.datasets:
        if runs.empty or not (runs["dataset"] == dataset).any():
            continue
        figures += [drawn for draw in kinds if (drawn := draw(runs, suite, dataset)) is not None]
    return figures


def suite_plots(runs: pd.DataFrame, suite: SuiteRecord, out: Path) -> list[Path]:
    """Every plot of :func:`suite_figures`, written to ``out`` as PNG and PDF."""
    return [path for stem, figure in suite_figures(runs, suite) for path in _save(figure, out, stem)]
