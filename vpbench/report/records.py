"""The flat form every table and plot reads: one row per run (``runs.csv``) and one row per test clip
(``clips.csv``), built from the store or read back from CSV exported into ``leaderboards/``.

``runs`` columns (one row per run, in suite order; empty where a value is absent):

* identity: ``suite, suite_version, order, label, run_id, model, config, dataset, scale, seed, task, loss,
  val_metric`` (what validations measure: ``mse`` or ``lpips``), ``patience, min_delta, max_lr_drops, drop_factor, context, horizon, height, width, status, wall_s, finished_at`` (ISO time of the
  record's last write), ``vpbench_version, git_commit`` (from the run's manifest)
* metrics (means over test clips): ``<metric>@<step>`` for steps 1..horizon and ``<metric>_mean``, for
  psnr, ssim and lpips; ``lpips_unavailable`` gives the reason when LPIPS could not be computed;
  OpenSTL's units ``mse_sum_mean, mae_sum_mean, psnr_array`` (empty for runs stored before them);
  ``fvd, fvd_frames, fvd_clips`` (which frames and how many clips entered it) or ``fvd_unavailable`` (why)
* profile at the run's geometry: ``params, params_without_norm, codec`` (the class of the shared codec the
  model runs on, or ``its own (<model class>)``), ``macs_per_sample, macs_per_step_mean,
  flops_per_sample, elementwise_flops_per_sample, conv_macs_torch, conv_macs_fvcore, fvcore_macs_per_sample,
  latency_b1_median_ms, latency_b1_iqr_ms, latency_b1_samples, latency_b1_total_s, latency_tp_batch,
  latency_tp_median_ms, latency_tp_iqr_ms, peak_memory_mb, profile_device, profile_note``
* training: ``steps_trained, max_steps, converged_at`` (the step the plateau rule ended it at; empty:
  the whole budget ran), ``converged`` (true only when the rule ended it before the budget did; empty
  for a run that trains nothing), ``stop_reason`` (``plateau``, ``plateau at the budget`` or ``budget``),
  ``lr_drop_steps`` (the steps whose plateau cut the learning rate, ``;``-separated), ``selected_step``
  (best validation), ``train_s`` (training seconds summed over every process that trained the run, resumes
  included; ``wall_s`` is the last process's whole run), ``val_curve`` (``step:value;...`` of the run's val metric)
* counted at the paper geometry (meta device): ``paper_params_without_norm, paper_macs_per_step_mean,
  paper_macs_per_sample, paper_height, paper_width``

``clips`` columns: ``run_id, clip, psnr, ssim, lpips`` (each clip's mean over the horizon) and
``psnr@1, ssim@1, lpips@1`` (each clip's first predicted frame).

``records.json`` beside them: ``{run_id: {"config": resolved config, "manifest": environment}}``, what a
run's page shows besides its row (exports written before it existed have none).
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from vpbench.measure.catalogue import METRICS

RUNS_CSV, CLIPS_CSV, SUITE_JSON, RECORDS_JSON = "runs.csv", "clips.csv", "suite.json", "records.json"


def _latency(profile: dict, key: str) -> dict:
    return (profile.get("latency") or {}).get(key) or {}


def flatten(record: dict[str, Any], suite: str, version: int, order: int) -> dict[str, Any]:
    """One store record -> one ``runs`` row."""
    config, metrics, profile = record["config"], record.get("metrics") or {}, record.get("profile") or {}
    data = config["data"]
    row: dict[str, Any] = {
        "suite": suite, "suite_version": version, "order": order,
        "label": record.get("label") or config["sources"]["model"], "run_id": record["run_id"],
        "model": record["model"], "config": config["sources"]["model"], "dataset": record["dataset"],
        "scale": record["scale"], "seed": record["seed"], "task": config.get("task", "train"),
        "loss": config["train"]["loss"], "val_metric": config["train"].get("val_metric", "mse"),
        "patience": config["train"].get("patience"),
        "min_delta": config["train"].get("min_delta"), "max_lr_drops": config["train"].get("lr_drops"),
        "drop_factor": config["train"].get("drop_factor"), "context": data["context"], "horizon": data["horizon"],
        "height": data["height"], "width": data["width"], "status": record["status"], "wall_s": record.get("wall_s"),
        "finished_at": record.get("updated_at"),
        "vpbench_version": ((record.get("manifest") or {}).get("packages") or {}).get("vpbench"),
        "git_commit": (record.get("manifest") or {}).get("git_commit"),
    }
    for metric in METRICS:
        values = metrics.get(metric)
        for step in range(1, data["horizon"] + 1):
            row[f"{metric}@{step}"] = values["per_step"][step - 1] if values else None
        row[f"{metric}_mean"] = values["mean"] if values else None
    row["lpips_unavailable"] = metrics.get("lpips_unavailable")
    for metric in ("mse_sum", "mae_sum"):  # OpenSTL's units (vpbench.measure.catalogue.OPENSTL_METRICS)
        row[f"{metric}_mean"] = (metrics.get(metric) or {}).get("mean")
    row["psnr_array"] = metrics.get("psnr_array")
    fvd = metrics.get("fvd") or {}
    row.update({"fvd": fvd.get("value"), "fvd_frames": (fvd.get("protocol") or {}).get("frames"),
                "fvd_clips": fvd.get("clips"), "fvd_unavailable": fvd.get("unavailable")})
    training = metrics.get("training") or {}
    row.update({"steps_trained": training.get("steps"), "max_steps": training.get("max_steps"),
                "converged_at": training.get("converged_at"), **stopping(training),
                "lr_drop_steps": ";".join(map(str, training.get("lr_drops") or [])),
                "selected_step": training.get("selected_step"), "val_curve": format_curve(training.get("val_curve")),
                "train_s": training.get("train_seconds")})

    parameters = profile.get("parameters") or {}
    flops = profile.get("flops") or {}
    torch_count, fvcore = flops.get("torch") or {}, flops.get("fvcore") or {}
    b1, tp = _latency(profile, "batch_1"), _latency(profile, "throughput")
    row.update({
        "params": parameters.get("params"), "params_without_norm": parameters.get("params_without_norm"),
        "codec": profile.get("codec"),
        "macs_per_sample": torch_count.get("macs_per_sample"), "macs_per_step_mean": torch_count.get("macs_per_step_mean"),
        "flops_per_sample": torch_count.get("flops_per_sample"),
        "elementwise_flops_per_sample": torch_count.get("elementwise_flops_per_sample"),
        "conv_macs_torch": torch_count.get("conv_macs_per_sample"), "conv_macs_fvcore": fvcore.get("conv_macs_per_sample"),
        "fvcore_macs_per_sample": fvcore.get("macs_per_sample"),
        "latency_b1_median_ms": b1.get("median_ms"), "latency_b1_iqr_ms": b1.get("iqr_ms"),
        "latency_b1_samples": len(b1["samples_ms"]) if "samples_ms" in b1 else None,
        "latency_b1_total_s": b1.get("total_s"), "latency_tp_batch": tp.get("batch"),
        "latency_tp_median_ms": tp.get("median_ms"), "latency_tp_iqr_ms": tp.get("iqr_ms"),
        "peak_memory_mb": b1.get("peak_memory_mb"), "profile_device": profile.get("device"),
        "profile_note": b1.get("error") or fvcore.get("error"),
    })
    paper = profile.get("paper_geometry") or (profile if record["scale"] == "paper" else {})
    paper_torch = (paper.get("flops") or {}).get("torch") or {}
    row.update({
        "paper_params_without_norm": (paper.get("parameters") or {}).get("params_without_norm"),
        "paper_macs_per_step_mean": paper_torch.get("macs_per_step_mean"),
        "paper_macs_per_sample": paper_torch.get("macs_per_sample"),
        "paper_height": (paper.get("geometry") or {}).get("height"),
        "paper_width": (paper.get("geometry") or {}).get("width"),
    })
    return row


def stopping(training: dict[str, Any]) -> dict[str, Any]:
    """``converged`` and ``stop_reason`` of a run's training record (both None for a run that trains nothing).

    A run has converged only when the plateau rule ended it before its budget: a rule that fires at the
    last step cannot tell a plateau from a budget too short, so such a run is not counted as converged.
    """
    steps, at, budget = (_value(training.get(key)) for key in ("steps", "converged_at", "max_steps"))
    if not steps:
        return {"converged": None, "stop_reason": None}
    if at is None:
        return {"converged": False, "stop_reason": "budget"}
    if budget is not None and at >= budget:
        return {"converged": False, "stop_reason": "plateau at the budget"}
    return {"converged": True, "stop_reason": "plateau"}


def _value(cell: Any) -> Any:
    """A record's or a CSV row's value, with an empty cell (None or NaN) as None."""
    return None if cell is None or (isinstance(cell, float) and math.isnan(cell)) else cell


def format_curve(curve: list | None) -> str | None:
    """``[(step, val loss), ...]`` -> ``"100:0.0178;200:0.0125"`` (floats by repr, so lossless in CSV)."""
    return ";".join(f"{int(step)}:{float(loss)!r}" for step, loss in curve) if curve else None


def parse_curve(text: Any) -> list[tuple[int, float]]:
    """The inverse of :func:`format_curve`; an empty cell (NaN from CSV, None) is no curve."""
    if not isinstance(text, str) or not text:
        return []
    return [(int(step), float(loss)) for step, loss in (pair.split(":") for pair in text.split(";"))]


def clip_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One store record -> its ``clips`` rows (each clip's mean over the horizon).

    A record imported from an export (:func:`vpbench.run.record.import_export`) holds those rows
    themselves (``metrics["clip_rows"]``), not every clip's every step."""
    metrics = record.get("metrics") or {}
    if "clip_rows" in metrics:
        return [{"run_id": record["run_id"], **row} for row in metrics["clip_rows"]]
    per_metric = {m: metrics[m]["per_clip"] for m in METRICS if m in metrics and "per_clip" in metrics[m]}
    if not per_metric:
        return []
    clips = len(next(iter(per_metric.values())))
    blocks = metrics.get("clip_blocks") or [None] * clips
    return [{"run_id": record["run_id"], "clip": i, "block": blocks[i],
             **{m: sum(values[i]) / len(values[i]) for m, values in per_metric.items()},
             **{f"{m}@1": values[i][0] for m, values in per_metric.items()}} for i in range(clips)]


def from_store(store, suite) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, clips)`` of a suite's complete runs, ordered as the suite lists them (label, then seed)."""
    records = store.runs(suite=suite.name, status="complete")
    order = {entry.label: i for i, entry in enumerate(suite.models)}
    rows = [flatten(r, suite.name, suite.version, order.get(r["label"], len(order))) for r in records]
    runs = pd.DataFrame(rows)
    if not runs.empty:
        dataset_order = {d: i for i, d in enumerate(suite.datasets)}
        runs["_dataset"] = runs["dataset"].map(dataset_order)
        runs = runs.sort_values(["_dataset", "order", "seed", "run_id"]).drop(columns="_dataset").reset_index(drop=True)
    by_id = {r["run_id"]: r for r in records}
    ordered = [by_id[run_id] for run_id in runs["run_id"]] if not runs.empty else []  # clips in the runs' order
    clips = pd.DataFrame([row for r in ordered for row in clip_rows(r)],
                         columns=["run_id", "clip", "block", *METRICS, *(f"{m}@1" for m in METRICS)])
    return runs, clips


EXPORTED_FIELDS = ("config", "manifest", "metrics", "profile", "wall_s")


def details(store, suite) -> dict[str, dict[str, Any]]:
    """``{run_id: {"config", "manifest", "metrics", "profile", "wall_s"}}`` of a suite's complete runs: what a
    run's page shows besides its row, and what :func:`vpbench.run.record.import_export` needs to take the
    run back into a store. The metrics leave out every clip's every step (``per_clip``) and an imported
    run's clip rows (``clip_rows``): clips.csv holds what the report reads of them, and an import takes
    them from there."""
    exported = {}
    for r in store.runs(suite=suite.name, status="complete"):
        entry = {field: r.get(field) for field in EXPORTED_FIELDS}
        metrics = entry["metrics"] or {}
        entry["metrics"] = {key: {k: v for k, v in value.items() if k != "per_clip"} if isinstance(value, dict)
                            else value for key, value in metrics.items() if key != "clip_rows"}
        exported[r["run_id"]] = entry
    return exported


def export(runs: pd.DataFrame, clips: pd.DataFrame, out: Path, definition: dict[str, Any],
           run_details: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write runs.csv, clips.csv, suite.json (the suite's definition as it ran) and, given ``run_details``
    (:func:`details`), records.json to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / RUNS_CSV, out / CLIPS_CSV, out / SUITE_JSON]
    runs.to_csv(paths[0], index=False)
    clips.to_csv(paths[1], index=False)
    paths[2].write_text(json.dumps(definition, indent=1, ensure_ascii=False) + "\n")
    if run_details is not None:
        paths.append(out / RECORDS_JSON)
        paths[3].write_text(json.dumps(run_details, indent=None, sort_keys=True) + "\n")
    return paths


SAMPLE_FILES = ("test000.png", "test000.gif")  # test clip 0's strip and GIF: what the samples strip and the site show


def sample_folder(out: Path, run_id: str) -> Path:
    """Where an export keeps a run's first test sample: ``<out>/run_samples/<run_id>/samples/``; an imported run's
    folder is ``<out>/run_samples/<run_id>``, so strips and run pages draw from a fresh store too."""
    return out / "run_samples" / run_id / "samples"


def export_samples(store: Any, run_ids: list[str], out: Path) -> list[Path]:
    """Copy each run's test clip 0 (:data:`SAMPLE_FILES`, some 30 kB a run) from its run folder into
    :func:`sample_folder`; a run whose folder holds none (a profile-only run, an older import) is skipped."""
    import shutil

    written = []
    for run_id in run_ids:
        record = store.get(run_id)
        if record is None or not record.get("run_dir"):
            continue
        target = sample_folder(out, run_id)
        for name in SAMPLE_FILES:
            source = Path(record["run_dir"]) / "samples" / name
            if source.is_file() and source.resolve() != (target / name).resolve():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / name)
                written.append(target / name)
    return written


def details_in(folder: Path) -> dict[str, dict[str, Any]]:
    """The records.json that :func:`export` wrote beside the CSV, or {} (an export from before it did)."""
    path = folder / RECORDS_JSON
    return _json_file(path) if path.is_file() else {}


def _json_file(path: Path) -> Any:
    """A JSON file of an export; a file that does not parse is a VpbenchError naming it."""
    from vpbench.errors import VpbenchError

    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise VpbenchError(f"{path}: not valid JSON ({exc}); write it again with `vpbench export`") from None


def suite_definition_in(folder: Path) -> dict[str, Any] | None:
    """The suite.json that :func:`export` wrote beside the CSV, or None (an export from before it did)."""
    path = folder / SUITE_JSON
    return _json_file(path) if path.is_file() else None


# runs.csv columns that hold text; every other column of runs.csv and clips.csv (but run_id) holds numbers
TEXT_COLUMNS = {"suite", "label", "run_id", "model", "config", "dataset", "scale", "task", "loss", "val_metric", "status",
                "finished_at", "vpbench_version", "git_commit", "lpips_unavailable", "fvd_frames", "fvd_unavailable",
                "val_curve", "profile_device", "profile_note", "codec", "converged", "stop_reason", "lr_drop_steps",
                "block"}
METRIC_COLUMN = re.compile(r"^(?:(?:psnr|ssim|lpips|mse_sum|mae_sum)(?:@\d+|_mean)?|psnr_array|fvd)$")


def check_cells(path: Path) -> None:
    """Every number column of an exported CSV holds numbers, and every metric a finite one (an empty cell
    is a value that is absent); otherwise a VpbenchError naming the file, the row and the column.

    So a tampered or damaged export never puts a NaN into a mean, or a wrong seed count into a caption.
    """
    from vpbench.errors import VpbenchError

    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VpbenchError(f"{path}: not readable as CSV ({exc})") from None
    for line, row in enumerate(rows, start=2):
        for column, cell in row.items():
            if column is None or column in TEXT_COLUMNS or cell in ("", None):
                continue
            where = f"{path}: line {line} (run {row.get('run_id') or '?'}), column {column}"
            try:
                value = float(cell)
            except ValueError:
                raise VpbenchError(f"{where}: {cell[:40]!r} is not a number") from None
            if METRIC_COLUMN.match(column) and not math.isfinite(value):
                raise VpbenchError(f"{where}: {cell!r} is not a finite metric (an absent value is an empty cell)")


def from_csv(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, clips)`` exported to ``folder``, every cell checked first (:func:`check_cells`)."""
    from vpbench.errors import VpbenchError

    for name in (RUNS_CSV, CLIPS_CSV):
        if not (folder / name).is_file():
            raise VpbenchError(f"{folder / name} not found (write it with `vpbench export`)")
        check_cells(folder / name)
    # round_trip: a float reads back as the very value written (the fast parser may be off by one ulp)
    return (pd.read_csv(folder / RUNS_CSV, float_precision="round_trip"),
            pd.read_csv(folder / CLIPS_CSV, float_precision="round_trip", dtype={"block": "string"}))


def column_or(runs: pd.DataFrame, name: str, absent: str) -> pd.Series:
    """``runs[name]`` with ``absent`` where it is empty, or everywhere for exports written before it existed."""
    return runs[name].fillna(absent) if name in runs else pd.Series(absent, index=runs.index)
