"""Results a person can browse (issue 23): the static site in a real headless Chromium, TensorBoard event files,
logs a file can hold, and the table and LaTeX details a reader meets first."""

from __future__ import annotations

import csv
import io
import os
import shutil
import re
from pathlib import Path

import pytest
from conftest import REPO, cli
from PIL import Image

from browser import Browser, chromium

LEADERBOARDS = REPO / "leaderboards"


@pytest.fixture(scope="module")
def browser():
    binary = chromium()
    if binary is None:
        if os.environ.get("VPBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required (VPBENCH_REQUIRE_BROWSER=1) and not installed: apt-get install chromium")
        pytest.skip("no Chromium here (apt-get install chromium)")
    with Browser(binary) as running:
        yield running


def crawl(browser: Browser, site: Path, screenshots: dict[str, Path] | None = None) -> dict[Path, object]:
    """Every HTML page reachable from ``site/index.html`` by its links, each loaded from file:// once."""
    root, screenshots = site.resolve(), screenshots or {}
    visits, todo = {}, [root / "index.html"]
    while todo:
        page = todo.pop()
        if page in visits:
            continue
        visits[page] = visit = browser.visit(page.as_uri(), screenshots.get(page.relative_to(root).as_posix()))
        for link in visit.links:
            assert link.startswith("file://"), f"{page}: a link off the machine: {link}"
            target = Path(link.removeprefix("file://").split("#")[0])
            assert target.exists(), f"{page}: a broken link to {target}"
            if target.suffix == ".html" and target.is_relative_to(root):
                todo.append(target)
    return visits


@pytest.mark.slow
def test_the_site_of_the_committed_leaderboards_loads_in_chromium(tmp_path, browser):
    copy = tmp_path / "leaderboards"  # rendered where regenerate.sh renders it, in a copy: links come out the same
    shutil.copytree(LEADERBOARDS, copy, ignore=shutil.ignore_patterns("site"))
    site = copy / "site"
    assert cli("site", "--from", str(copy), "--out", str(site)) == 0
    fresh = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    committed = {p.relative_to(LEADERBOARDS / "site"): p.read_bytes() for p in (LEADERBOARDS / "site").rglob("*")
                 if p.is_file()}
    stale = sorted(str(name) for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"leaderboards/site is stale (leaderboards/regenerate.sh renders it): {stale[:5]}"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    visits = crawl(browser, site, {"index.html": shots / "index.png", "ablation/index.html": shots / "ablation.png"})

    problems = {str(page): visit.problems for page, visit in visits.items() if visit.problems}
    assert not problems, problems  # no console error, no failed request, every image loaded (natural width > 0)
    suites = sorted(p.parent.name for p in LEADERBOARDS.glob("*/runs.csv"))
    assert suites and all((site / name / "index.html").resolve() in visits for name in suites)
    for name in suites:
        page = visits[(site / name / "index.html").resolve()]
        assert page.images and all(image["width"] > 0 for image in page.images)
        for row in csv.DictReader(io.StringIO((copy / name / "runs.csv").read_text())):
            assert (site / name / "runs" / f"{row['run_id']}.html").resolve() in visits, (name, row["run_id"])
        table_rows = [r[0] for r in csv.reader(io.StringIO((LEADERBOARDS / name / "table.csv").read_text()))
                      if r and not r[0].startswith("#") and r[0] != "label"]
        assert table_rows and all(label in page.text for label in table_rows), name  # every row of the suite's table
        plots = {Path(i["src"]).name for i in page.images}
        assert {p.name for p in (LEADERBOARDS / name / "plots").glob("*.png")} <= plots  # reused, not redrawn
    assert not list(site.rglob("*.png")), "the committed PNGs are linked, not copied"
    for name in ("index", "ablation"):
        with Image.open(shots / f"{name}.png") as shot:
            assert shot.width >= 1000 and shot.height >= 1000


def test_the_checker_sees_a_missing_image_and_a_console_error(tmp_path, browser):
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    problems = " ".join(browser.visit(page.as_uri()).problems)
    assert "ERR_FILE_NOT_FOUND" in problems and "boom" in problems and "image not loaded" in problems


@pytest.mark.slow
def test_a_log_file_holds_whole_lines_and_no_progress_bar(smoke_run):
    text = smoke_run.log.read_bytes().decode()
    assert "\r" not in text
    validations = [line for line in text.splitlines() if "val MSE" in line]
    assert len(validations) == 2 and "step 30/60" in validations[0] and "step 60/60" in validations[1]
    assert sum("complete in" in line for line in text.splitlines()) == 2


@pytest.mark.slow
def test_tensorboard_holds_the_logged_scalars_and_a_prediction_strip(smoke_run):
    from tensorboard.backend.event_processing import event_accumulator

    from vpbench.config.resolution import run_id_of
    from vpbench.store import Store
    from vpbench.config.suites import expand, load_suite

    records = {r["model"]: r for r in Store(smoke_run.store).runs()}
    convlstm, copy_last = Path(records["convlstm"]["run_dir"]), Path(records["copy_last"]["run_dir"])
    events = event_accumulator.EventAccumulator(str(convlstm / "tb"), size_guidance={event_accumulator.IMAGES: 0,
                                                                                   event_accumulator.SCALARS: 0})
    events.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm", "val/mse"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 61))
    assert [e.step for e in events.Scalars("val/mse")] == [30, 60]
    logged = [e.value for e in events.Scalars("val/mse")]
    curve = [loss for _, loss in records["convlstm"]["metrics"]["training"]["val_curve"]]
    assert logged == pytest.approx(curve, rel=1e-6)
    strip = events.Images("val/prediction")[-1]
    assert (strip.width, strip.height) == (8 * 64, 2 * 64)  # truth over prediction, 4 + 4 frames of 64x64
    assert not (copy_last / "tb").exists()  # a run that trains nothing logs nothing

    configs = dict(expand(load_suite("smoke"), "smoke"))
    assert records["convlstm"]["run_id"] == run_id_of(configs["convlstm"])  # the log is not part of the run's identity
    # (that it changes no number either: test_ray_executor trains the same runs unlogged and compares every clip)


@pytest.mark.slow
def test_the_site_of_a_store_shows_its_runs_samples_and_loose_runs(smoke_run, tmp_path, browser):
    from vpbench.store import Store

    store = smoke_run.copy(tmp_path)  # the smoke suite's store, plus one run that belongs to no suite
    assert cli("run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false",
               "--set", "seed=7") == 0
    site = tmp_path / "site"
    assert cli("site", "--store", str(store), "--out", str(site)) == 0
    visits = crawl(browser, site)
    problems = {str(page): visit.problems for page, visit in visits.items() if visit.problems}
    assert not problems, problems
    suite_page = visits[(site / "smoke" / "index.html").resolve()]
    assert "convlstm" in suite_page.text and "copy_last" in suite_page.text
    sources = [Path(i["src"]).name for i in suite_page.images]
    assert "samples_moving_objects.png" in sources and any(s.startswith("curves_") for s in sources)
    for run_id in (r["run_id"] for r in Store(store).runs(suite="smoke")):
        run_page = visits[(site / "smoke" / "runs" / f"{run_id}.html").resolve()]
        assert {"test000.png", "test000.gif"} <= {Path(i["src"]).name for i in run_page.images}
        assert '"git_commit"' in run_page.text and '"data"' in run_page.text  # manifest and resolved config
    for name in ("table.md", "table.tex", "table.csv"):
        assert (site / "smoke" / name).stat().st_size > 0
    loose = visits[(site / "runs" / "index.html").resolve()]
    (run,) = [r for r in Store(store).runs() if r["seed"] == 7]
    assert run["run_id"] in loose.text and "Complete runs that belong to no suite" in loose.text


def test_site_errors_are_one_line(tmp_path, capsys):
    assert cli("site", "--from", str(tmp_path), "--out", str(tmp_path / "site")) == 2
    assert "no exported suite there" in capsys.readouterr().err
    assert cli("site", "--store", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "site")) == 2
    assert "no results store" in capsys.readouterr().err


def test_html_tables_show_the_intervals_and_marks_of_the_markdown(tmp_path):
    from vpbench.report.records import from_csv, suite_definition_in
    from vpbench.report.layouts import suite_tables
    from vpbench.report.tables import to_html, to_markdown
    from vpbench.report.suite_record import SuiteRecord

    folder = LEADERBOARDS / "ablation"
    runs, clips = from_csv(folder)
    (table,) = suite_tables(runs, clips, SuiteRecord.from_record(suite_definition_in(folder)), paper=True)
    page, markdown = to_html(table), to_markdown(table)
    assert page.count("<tr>") == len(table.rows) + 1 and '<th colspan="2">Δ vs RPM</th>' in page
    for line in markdown.splitlines()[4:4 + len(table.rows)]:  # every Markdown cell is in the HTML, escaped alike
        for cell in line.strip("| ").split(" | "):
            assert f">{cell}<" in page, cell
    assert re.search(r"[+-]\d+\.\d+ ± \d+\.\d+\*<", page) and " ± " in page  # a marked comparison


def test_latex_sets_powers_in_math_mode():
    from vpbench.report.tables import Column, Table, latex_escape, to_latex

    assert latex_escape("Mi = 2^20, GiMAC = 2^30, 5% of a_b") == r"Mi = $2^{20}$, GiMAC = $2^{30}$, 5\% of a\_b"
    assert latex_escape("LPIPS ×10⁻²") == r"LPIPS $\times 10^{-2}$"
    latex = to_latex(Table("T", [Column("label", "Method")], [{"label": "x"}], notes=["Mi = 2^20"]))
    assert r"$2^{20}$" in latex and "textasciicircum" not in latex
    committed = (LEADERBOARDS / "ablation" / "table.tex").read_text()
    assert "textasciicircum" not in committed and r"$2^{20}$" in committed  # the committed tables are regenerated
