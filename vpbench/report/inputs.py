"""What the report commands (table, plot, export, site, samples) read: a store or exported CSV, and the
suite as it ran. Nothing here imports torch, YAML or the suite loader: a store that holds no definition
of a suite (stored before definitions were) asks ``fallback(name)`` for today's (the CLI passes
:func:`vpbench.config.suites.suite_record`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from vpbench.errors import VpbenchError
from vpbench.report import records
from vpbench.report.suite_record import SuiteRecord
from vpbench.report.tables import Table, render, runs_table
from vpbench.store import Store

Fallback = Callable[[str], dict]


def open_store(path: Path, hint: str = "pass --store") -> Store:
    if not path.is_file():
        raise VpbenchError(f"no results store at {path} (run `vpbench run` first or {hint})")
    return Store(path)


def check_out_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise VpbenchError(f"--out {out}: is a file; expected a folder (it is created if missing)")


def reported_suite(name: str, definition: dict | None, where: str, fallback: Fallback) -> SuiteRecord:
    """The suite as it ran (its stored definition), or, for results stored before definitions were, today's."""
    if definition is None:
        print(f"vpbench: {where} holds no definition of suite {name} (stored before they were recorded); "
              f"labels, order and reference come from today's suite file", file=sys.stderr)
        definition = fallback(name)
    return SuiteRecord.from_record(definition)


def stored_suite(store: Store, name: str, fallback: Fallback) -> SuiteRecord:
    """The suite ``name`` (a name or a suite file) as the store recorded it when it ran."""
    definition = store.suite_definition(name)  # by name: also when its file has since been removed
    if definition is None:
        definition = store.suite_definition(fallback(name)["name"])
    return reported_suite(name, definition, str(store.path), fallback)


def suite_frames(suite: str, store_path: Path, source: Path | None,
                 fallback: Fallback) -> tuple[SuiteRecord, pd.DataFrame, pd.DataFrame]:
    """``(suite, runs, clips)`` from ``source`` (a folder `vpbench export` wrote) or from the store."""
    if source is not None:
        runs, clips = records.from_csv(source)
        return reported_suite(suite, records.suite_definition_in(source), str(source), fallback), runs, clips
    store = open_store(store_path)
    record = stored_suite(store, suite, fallback)
    runs, clips = records.from_store(store, record)
    return record, runs, clips


def table(suite: str | None, every_run: bool, fmt: str, paper: bool, store_path: Path, source: Path | None,
          fallback: Fallback) -> str:
    """``vpbench table``: a suite in its layout; with no suite, the latest run's suite, or every run one row each."""
    from vpbench.report.layouts import suite_tables

    if suite and every_run:
        raise VpbenchError("--suite and --runs all: choose one (a suite's layout, or every run one row each)")
    latest = None
    if every_run or not suite:
        if source is not None:
            raise VpbenchError("--from needs --suite (exported CSV holds one suite)")
        store = open_store(store_path)
        latest = None if every_run else store.latest_suite()
        if every_run or latest is None:
            if not every_run:
                print(f"vpbench: the latest run in {store_path} belongs to no suite: every complete run, one row "
                      "each (--suite NAME for a suite's layout)", file=sys.stderr)
            frame = pd.DataFrame([records.flatten(r, "", 0, 0) for r in store.runs(status="complete")])
            return render([runs_table(frame, f"Runs in {store_path}")], fmt)
        print(f"vpbench: suite {latest} (that of the most recent run in {store_path}); "
              "--suite picks another, --runs all lists every run", file=sys.stderr)
        try:
            record, runs, clips = suite_frames(latest, store_path, None, fallback)
        except VpbenchError as exc:
            raise VpbenchError(f"{exc} (the latest run's suite; pass --suite NAME_OR_FILE, or --runs all)") from None
    else:
        record, runs, clips = suite_frames(suite, store_path, source, fallback)
    tables: list[Table] = suite_tables(runs, clips, record, paper=paper)
    return render(tables, fmt)


def export(suite: str, out: Path, store_path: Path, fallback: Fallback) -> list[Path]:
    """``vpbench export``: runs.csv, clips.csv, suite.json and records.json of a suite."""
    check_out_folder(out)
    record, runs, clips = suite_frames(suite, store_path, None, fallback)
    store = Store(store_path)
    paths = records.export(runs, clips, out, record.record(), records.details(store, record))
    return paths + records.export_samples(store, list(runs["run_id"]), out)


def plot(suite: str, out: Path, store_path: Path, source: Path | None, fallback: Fallback) -> list[Path]:
    from vpbench.report.plots import suite_plots

    check_out_folder(out)
    record, runs, _ = suite_frames(suite, store_path, source, fallback)
    return suite_plots(runs, record, out)


def site(out: Path, suites: list[str] | None, sources: list[Path] | None, store_path: Path) -> str:
    """``vpbench site``: the static site; the line that says where its index is."""
    from vpbench.report import site as site_pages

    check_out_folder(out)
    loose = None
    if sources:
        results = site_pages.from_exports(sources, suites)
    else:
        results, loose = site_pages.from_store(open_store(store_path, "pass --store or --from"), suites)
    if not results and (loose is None or loose.empty):
        raise VpbenchError(f"no suite {', '.join(suites or [])} and no complete run to show")
    pages = site_pages.build(results, out, loose)
    return f"{out / 'index.html'}: {len(pages)} pages, {len(results)} suite(s)"


def samples(suite: str, dataset: str | None, clip: int, out: Path, store_path: Path, fallback: Fallback) -> Path:
    """``vpbench samples``: the suite's rows predicting one test clip, side by side, as a PNG."""
    from vpbench.report.samples import suite_strip

    store = open_store(store_path)
    if out.is_dir():
        raise VpbenchError(f"--out {out}: is a folder; expected the PNG file to write")
    record = stored_suite(store, suite, fallback)
    strip = suite_strip(store.runs(suite=record.name, status="complete"), record, dataset, clip)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out)
    return out
