"""Recording: the one step that writes a run's results to the store (DESIGN §2, step 3).

:func:`record_result` stores a :class:`~vpbench.run.execute.RunResult` (its profile also under its
profile key, so later runs of the same model config and geometry reuse it) and marks the run
complete; :func:`record_failure` marks it failed with its error on one line and the traceback in
the run folder's ``error.log``; :func:`import_export` takes completed runs back from a suite's
export (a campaign's committed CSV), so a fresh store skips them instead of training them again.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

from vpbench.run.execute import RunResult
from vpbench.run.plan import Claim, Outcome
from vpbench.store import Store


def record_result(store: Store, claim: Claim, result: RunResult, wall_s: float) -> Outcome:
    run = claim.run
    if result.profile is not None:
        profile = {**result.profile, "profile_key": claim.profile_key}
        if claim.profile is None:
            store.save_profile(claim.profile_key, profile)
        store.update(run.run_id, profile=profile)
    store.complete(run.run_id, result.stored_metrics(), wall_s)  # metrics None: a profile-only run
    return Outcome(run.run_id, run.label, "complete", None, wall_s)


def record_failure(store: Store, claim: Claim, message: str, wall_s: float, trace: str | None = None) -> Outcome:
    """``trace``: the traceback for ``error.log`` (default: the exception being handled). A folder that cannot
    be written (full, read-only) keeps no ``error.log``: the store's one line says what happened."""
    log = claim.run_dir / "error.log"
    try:
        log.write_text(trace if trace is not None else traceback.format_exc())
    except OSError:
        with contextlib.suppress(OSError):
            if log.stat().st_size == 0:
                log.unlink()  # the empty file the failed write left
    store.fail(claim.run.run_id, message, wall_s)
    return Outcome(claim.run.run_id, claim.run.label, "failed", message, wall_s)


def import_export(store: Store, folder: Path) -> tuple[int, int]:
    """Take the complete runs of the export in ``folder`` (``vpbench export``) into ``store``:
    ``(imported, already there)``. A run the store already holds complete is left as it is.

    Each imported run keeps its config, manifest, profile, wall time and metrics; of every clip's
    every step only what clips.csv holds (each clip's mean and first predicted frame) comes back, and
    its run folder is the export's ``run_samples/<run_id>`` (test clip 0's strip and GIF, no checkpoints), or
    ``imported from <folder>`` for an export without it. The suite's definition
    and labels come from ``suite.json`` and ``runs.csv``.
    """
    from vpbench.errors import VpbenchError
    from vpbench.report import records

    runs, clips = records.from_csv(folder)
    definition = records.suite_definition_in(folder)
    exported = records.details_in(folder)
    if definition is None or not exported:
        raise VpbenchError(f"{folder}: no suite.json or records.json: export it again with `vpbench export`")
    missing = [run_id for run_id in runs["run_id"] if "metrics" not in exported.get(run_id, {})]
    if missing:
        raise VpbenchError(f"{folder / records.RECORDS_JSON}: run {missing[0]} has no metrics (an export written "
                           f"before imports were possible; export it again from its store)")
    store.record_suite(definition)
    if "block" in clips:  # absent (pd.NA) for independent clips; JSON has None for it
        clips["block"] = clips["block"].astype(object).where(clips["block"].notna(), None)
    rows_of = {run_id: group.drop(columns="run_id").to_dict("records") for run_id, group in clips.groupby("run_id")}
    imported = present = 0
    for run in runs.itertuples():
        entry = exported[run.run_id]
        held = store.get(run.run_id)
        if held is not None and held["status"] == "complete":
            present += 1
        else:
            samples = records.sample_folder(folder, run.run_id)  # the export's copy of its first test sample
            run_dir = samples.parent.resolve() if samples.is_dir() else f"imported from {folder}"
            store.start(run.run_id, entry["config"], run_dir)
            store.update(run.run_id, manifest=entry["manifest"], profile=entry["profile"])
            finished = run.finished_at if isinstance(run.finished_at, str) else None  # when it ran, not now
            store.complete(run.run_id, {**entry["metrics"], "clip_rows": rows_of.get(run.run_id, [])},
                           entry["wall_s"], finished)
            imported += 1
        store.add_to_suite(definition["name"], run.run_id, run.label)
    return imported, present
