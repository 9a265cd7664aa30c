"""Tables and plots: the paper layouts, LaTeX that compiles, and the committed
leaderboards regenerating from their CSV."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.testing.compare import compare_images
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO
from vpbench.cli import main
from vpbench.report.layouts import suite_tables
from vpbench.report.records import from_csv
from vpbench.report.tables import to_latex, to_markdown
from vpbench.config.suites import suite_record
from vpbench.report.suite_record import SuiteRecord

LEADERBOARDS = REPO / "leaderboards"
# each committed export, as its folder under leaderboards/ (the previous protocol's under previous_protocol/)
SUITES = [str(p.relative_to(LEADERBOARDS)) for p in sorted([*LEADERBOARDS.glob("*"), *LEADERBOARDS.glob("previous_protocol/*")])
          if (p / "runs.csv").is_file()] if LEADERBOARDS.is_dir() else []


def _suite(name: str) -> SuiteRecord:
    """The suite as a run of it today would store it."""
    return SuiteRecord.from_record(suite_record(name))


@pytest.mark.skipif("ablation" not in SUITES, reason="no committed ablation leaderboard")
def test_ablation_table_has_all_nine_memories_and_copy_last_with_paper_columns_and_our_counts():
    runs, clips = from_csv(LEADERBOARDS / "ablation")
    (table,) = suite_tables(runs, clips, _suite("ablation"), paper=True)
    labels = [row["label"] for row in table.rows]
    assert labels == [e.label for e in _suite("ablation").models] and len(labels) == 10
    assert labels[0] == "copy-last" and table.rows[0]["params"] == 0 and table.rows[0]["stopped"] is None
    for row in table.rows[1:]:
        assert row["params"] > 0 and row["flops"] > 0 and row["paper_params"] > 0
        assert row["stopped"]  # every learned row says where it stopped, the reference too
        assert (row["dpsnr"] is None) == (row["label"] == "RPM")  # the reference has no difference to itself
    # counted at moving digits' paper geometry (64x64 grey), not the paper's Human3.6M, so the RPM rows
    # keep the paper's relations rather than its values (test_profiling checks those at Human3.6M)
    params = {row["label"]: row["params"] for row in table.rows}
    assert params["RPM (θ=1, τ=1)"] < params["RPM (θ=5, τ=1)"] == params["RPM (θ=1, τ=5)"] < params["RPM"]
    assert params["RPM w/o residual"] == params["RPM"]
    markdown = to_markdown(table)
    assert "Params (Mi) Paper" in markdown and "± " in markdown and "PSNR Δ vs RPM (dB)" in markdown


def _compile(tex: str, folder: Path, two_column: bool) -> str:
    """pdflatex's log of ``tex`` in a 10 pt article (two-column: every table as ``table*``)."""
    options = "[twocolumn]" if two_column else ""
    if two_column:
        tex = re.sub(r"\\(begin|end)\{table\}", r"\\\1{table*}", tex)
    document = (f"\\documentclass{options}{{article}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n"
                f"{tex}\n\\end{{document}}\n")
    (folder / "table.tex").write_text(document)
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and (folder / "table.pdf").is_file(), result.stdout[-2000:]
    return (folder / "table.log").read_text(errors="replace")


def _text_outside_math(tex: str) -> str:
    return re.sub(r"\$[^$]*\$", " ", tex)


@pytest.mark.parametrize("suite", SUITES)
def test_latex_tables_fit_the_page_with_true_minus_signs(suite, tmp_path):
    """Every committed suite's LaTeX, the raw ``runs`` layout included: a table wider than a two-column
    page is set as stacked tabulars, so pdflatex reports no overfull box in either document."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("VPBENCH_REQUIRE_LATEX") == "1":
            pytest.fail("pdflatex is required in CI (apt-get install texlive-latex-base texlive-latex-recommended)")
        pytest.skip("pdflatex is not installed")
    runs, clips = from_csv(LEADERBOARDS / suite)
    tables = [to_latex(t) for t in suite_tables(runs, clips, _suite(Path(suite).name), paper=True)]
    for tex in tables:
        text = _text_outside_math(tex)
        assert "<" not in text and ">" not in text, "a comparison sign in text mode prints as ¡ or ¿"
        assert not re.search(r"(?<![A-Za-z0-9])-[0-9]", text), "a hyphen used as a minus sign"
        assert "\\resizebox" not in tex and "\\scalebox" not in tex
    narrow = [tex for tex in tables if tex.startswith("\\begin{table}")]
    for two_column, chosen in ((False, narrow), (True, tables)):
        if not chosen:
            continue
        log = _compile("\n".join(chosen), tmp_path, two_column)
        assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
def test_committed_tables_and_plots_regenerate_from_the_committed_csv(suite, tmp_path, capsys):
    folder = LEADERBOARDS / suite
    for fmt, name in (("markdown", "table.md"), ("latex", "table.tex"), ("csv", "table.csv")):
        assert main(["table", "--suite", Path(suite).name, "--from", str(folder), "--paper", "--format", fmt]) == 0
        assert capsys.readouterr().out == (folder / name).read_text(), f"{folder / name} is stale"
    assert main(["plot", "--suite", Path(suite).name, "--from", str(folder), "--out", str(tmp_path)]) == 0
    committed = sorted(p.name for p in (folder / "plots").glob("*.png"))
    regenerated = sorted(p.name for p in tmp_path.glob("*.png"))
    assert committed and committed == regenerated
    for name in committed:  # the committed plots are the baselines (RMS over 0-255 pixel values)
        difference = compare_images(str(folder / "plots" / name), str(tmp_path / name), tol=PLOT_TOLERANCE)
        assert difference is None, difference


PLOT_TOLERANCE = 2.0  # fonts and anti-aliasing may move a few pixels between machines; a moved label or band does not pass


@pytest.mark.slow
def test_smoke_suite_reproduces_its_committed_rows_to_the_printed_precision(smoke_run, tmp_path):
    committed = pd.read_csv(LEADERBOARDS / "smoke" / "runs.csv")
    assert main(["export", "--suite", "smoke", "--store", str(smoke_run.store), "--out", str(tmp_path / "export")]) == 0
    fresh = pd.read_csv(tmp_path / "export" / "runs.csv")
    assert list(fresh["run_id"]) == list(committed["run_id"])
    digits = {"psnr": (1, 2), "ssim": (1, 4), "lpips": (100, 2)}
    for metric, (scale, places) in digits.items():
        columns = [c for c in committed if c.startswith(f"{metric}@") or c == f"{metric}_mean"]
        for column in columns:
            ours = (fresh[column] * scale).round(places)
            theirs = (committed[column] * scale).round(places)
            assert ours.equals(theirs), column
    for column in ("params", "macs_per_sample", "paper_params_without_norm", "paper_macs_per_step_mean"):
        assert fresh[column].equals(committed[column]), column


def _synthetic_leaderboard(seeds=(0, 1, 2), clips_per_run=20, crowd=()):
    """``(runs, clips)`` frames of copy-last and a ConvLSTM that is 3 dB better at the first predicted frame,
    plus ``crowd`` rows within 0.05 dB and 2 % of its cost (labels that would collide in a plot)."""
    rng = np.random.default_rng(0)
    truth = rng.normal(18, 1, clips_per_run)
    runs, clips = [], []
    stops = {0: (600, 600), 1: (1000, None), 2: (800, 800)}  # (steps trained, converged at)
    rows = [("copy-last", 0.0), ("ConvLSTM", 3.0)] + [(label, 3.0 + 0.01 * i) for i, label in enumerate(crowd)]
    for index, (label, gain) in enumerate(rows):
        for seed in seeds:
            run_id = f"{label}-{seed}"
            values = truth + gain + rng.normal(0, 0.1, clips_per_run)
            trained, converged = stops[seed] if gain else (0, None)
            runs.append({"label": label, "run_id": run_id, "dataset": "moving_digits", "seed": seed, "scale": "small",
                         "task": "train", "context": 5, "horizon": 5, "height": 32, "width": 32,
                         **{f"{m}@{k}": v for k in range(1, 6) for m, v in
                            (("psnr", values.mean()), ("ssim", 0.5 + gain / 10), ("lpips", 0.1))},
                         "psnr_mean": values.mean(), "ssim_mean": 0.5, "lpips_mean": 0.1,
                         "steps_trained": trained, "max_steps": 1000 if gain else None,
                         "converged_at": converged, "patience": 2, "min_delta": 0.02,
                         "val_curve": "100:0.02;200:0.015;300:0.012" if gain else None,
                         "macs_per_sample": 4e7 * (1 + 0.005 * index) if gain else 0,
                         "latency_b1_median_ms": 5.0 * (1 + 0.005 * index) if gain else 0.1})
            clips += [{"run_id": run_id, "clip": i, "psnr": v - 1, "ssim": 0.5, "lpips": 0.1,
                       "psnr@1": v, "ssim@1": 0.5 + gain / 10 + rng.normal(0, 0.01), "lpips@1": 0.1}
                      for i, v in enumerate(values)]
    return pd.DataFrame(runs), pd.DataFrame(clips)


def test_leaderboard_says_where_each_run_stopped_and_compares_the_first_frame_with_copy_last():
    runs, clips = _synthetic_leaderboard()
    suite = _suite("leaderboard")
    (table,) = [t for t in suite_tables(runs, clips, suite) if "moving_digits" in t.title]
    rows = {row["label"]: row for row in table.rows}
    assert rows["ConvLSTM"]["stopped"] == "600/1000†/800" and rows["copy-last"]["stopped"] is None
    first = rows["ConvLSTM"]["dpsnr1"]
    assert first.difference == pytest.approx(3.0, abs=0.1) and first.significant and first.seeds == 3
    assert rows["ConvLSTM"]["dssim1"].difference == pytest.approx(0.3, abs=0.01) and rows["ConvLSTM"]["dssim1"].significant
    assert rows["copy-last"]["dpsnr1"] is None  # the reference row is not compared with itself
    notes = " ".join(table.notes)
    assert "stopped after 2 validations" in notes and "† = not converged" in notes and "2 of 3 runs converged" in notes
    assert "small scale" in table.caption and "3 seed(s)" in table.caption and len(table.caption) < 200
    headers = [c.header for c in table.columns]
    assert "PSNR t=6" in headers and "Stopped at step" in headers
    assert {c.group for c in table.columns} >= {"t=6", "t=10", "Δ vs copy-last"}
    old_export = clips.drop(columns=["psnr@1", "ssim@1", "lpips@1"])  # CSV exported before the columns existed
    (table,) = [t for t in suite_tables(runs, old_export, suite) if "moving_digits" in t.title]
    assert [row["dpsnr1"] for row in table.rows] == [None, None]


def test_convergence_plot_draws_every_trained_run_and_skips_untrained_suites(tmp_path):
    from vpbench.report.plots import convergence, suite_plots
    from vpbench.report.records import format_curve, parse_curve

    curve = [(100, 0.02), (200, 0.0151234567891234)]
    assert parse_curve(format_curve(curve)) == curve and parse_curve(float("nan")) == [] and format_curve(None) is None
    runs, _ = _synthetic_leaderboard()
    suite = _suite("leaderboard")
    stem, figure = convergence(runs, suite, "moving_digits")
    lines = [line for line in figure.axes[0].get_lines() if len(line.get_xdata()) > 1]
    assert stem == "convergence_moving_digits" and len(lines) == 3  # one curve per ConvLSTM seed
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend[:1] == ["ConvLSTM"] and {"seed 0", "seed 1", "seed 2"} <= set(legend)
    dots = [line for line in figure.axes[0].get_lines() if len(line.get_xdata()) == 1]
    filled = [line.get_markerfacecolor() != "white" for line in dots]
    assert filled == [True, False, True]  # seed 1 ran out of budget (converged_at empty)
    assert convergence(runs[runs["label"] == "copy-last"], suite, "moving_digits") is None
    paths = suite_plots(runs, suite, tmp_path)
    assert {p.name for p in paths} >= {"convergence_moving_digits.png", "convergence_moving_digits.pdf"}
    assert Image.open(tmp_path / "convergence_moving_digits.png").size[0] > 500

    # a row validated on LPIPS (a perceptual objective) gets its own panel: no axis mixes MSE and LPIPS
    mixed, _ = _synthetic_leaderboard(crowd=["STRPM"])
    mixed["val_metric"] = np.where(mixed["label"] == "STRPM", "lpips", "mse")
    mixed["loss"] = np.where(mixed["label"] == "STRPM", "mse+gan+lp", "mse")
    _, figure = convergence(mixed, suite, "moving_digits")
    assert [axis.get_ylabel().split()[1] for axis in figure.axes] == ["MSE", "LPIPS"]
    assert all(len([line for line in axis.get_lines() if len(line.get_xdata()) > 1]) == 3 for axis in figure.axes)
    (table,) = [t for t in suite_tables(mixed, _synthetic_leaderboard(crowd=["STRPM"])[1], suite)
                if "moving_digits" in t.title]
    assert "STRPM: trained on a perceptual objective (GAN/LP terms), so they stop and select on the val LPIPS" in \
        " ".join(table.notes)


def test_a_row_has_one_colour_in_every_plot_and_intervals_are_points_not_bars():
    from matplotlib.colors import to_hex

    from vpbench.report.plots import bars, convergence, curves

    suite = _suite("ablation")
    runs, _ = _synthetic_leaderboard(crowd=["Causal-LSTM", "RPM"])
    runs["label"] = runs["label"].replace({"ConvLSTM": "E3D-LSTM"})
    colour_of = {}
    for draw in (curves, convergence):
        _, figure = draw(runs, suite, "moving_digits")
        for line in figure.axes[0].get_lines() + (figure.axes[0].get_legend() or figure.axes[-1].get_legend()).get_lines():
            if line.get_label() in ("Causal-LSTM", "RPM", "E3D-LSTM"):
                colour_of.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
        plt.close(figure)
    assert all(len(colours) == 1 for colours in colour_of.values()) and len(colour_of) == 3, colour_of
    _, figure = bars(runs, suite, "moving_digits")
    drawn = {to_hex(line.get_color()) for axis in figure.axes for line in axis.get_lines()}
    assert set.union(*colour_of.values()) <= drawn  # the same colours in the interval plot
    assert not [p for axis in figure.axes for p in axis.patches]  # no bar whose length depends on the axis start
    plt.close(figure)


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("suite_name", ["leaderboard", "ablation"])
def test_plots_keep_legends_off_the_data_labels_apart_and_name_the_scale(suite_name):
    from vpbench.report.plots import suite_figures

    suite = _suite(suite_name)
    crowd = [e.label for e in suite.models if e.label not in ("copy-last", "ConvLSTM")]
    runs, _ = _synthetic_leaderboard(crowd=crowd)
    figures = suite_figures(runs, suite)
    assert {stem.split("_")[0] for stem, _ in figures} >= {"curves", "convergence", "cost"}
    for stem, figure in figures:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        assert "small scale" in figure._suptitle.get_text() and "3 seed(s)" in figure._suptitle.get_text(), stem
        data_areas = [axis.get_window_extent(renderer) for axis in figure.axes if axis.axison]
        for legend in [axis.get_legend() for axis in figure.axes if axis.get_legend()]:
            box = legend.get_window_extent(renderer)
            assert not any(_boxes_overlap(box, area) for area in data_areas), f"{stem}: legend over the data"
        for axis in figure.axes:
            boxes = [text.get_window_extent(renderer) for text in axis.texts if text.get_text().strip()]
            for i, a in enumerate(boxes):
                assert not any(_boxes_overlap(a, b) for b in boxes[i + 1:]), f"{stem}: point labels overlap"
        plt.close(figure)


def test_samples_put_models_side_by_side_on_the_same_clip(tmp_path):
    import torch

    from vpbench.errors import VpbenchError
    from vpbench.run.evaluate import GIF_HEADER, write_sample
    from vpbench.report.samples import compose, frame_index, frame_ranges

    clip = torch.rand(8, 1, 16, 16)
    write_sample(clip, clip[4:] * 0.5, tmp_path / "a" / "test000")
    write_sample(clip, clip[4:], tmp_path / "b" / "test000")
    write_sample(torch.rand(8, 1, 16, 16), clip[4:], tmp_path / "c" / "test000")
    picture = compose([("half", tmp_path / "a" / "test000.png"), ("exact", tmp_path / "b" / "test000.png")], 4, 4, "t")
    single = Image.open(tmp_path / "a" / "test000.png")
    assert picture.height > 3 * single.height // 2 and picture.width > single.width  # truth + two prediction rows
    with pytest.raises(VpbenchError, match="not the same clip"):
        compose([("half", tmp_path / "a" / "test000.png"), ("other", tmp_path / "c" / "test000.png")], 4, 4, "t")
    with pytest.raises(VpbenchError, match="does not hold 9 frames"):
        compose([("half", tmp_path / "a" / "test000.png")], 4, 5, "t")
    long_label = "ConvLSTM 2x32 on a 16x16 latent, 8k steps, with a label longer than the margin"
    wide = np.asarray(compose([(long_label, tmp_path / "b" / "test000.png")], 4, 4, "t").convert("L"))
    label_band = wide[:, : wide.shape[1] - single.width]  # left of the frames: the labels alone
    assert (label_band[:, :12] < 128).any() and not (label_band[:, :2] < 128).any(), "the long label is cut at the left edge"
    # the tables' frame index: context t = 1..4, predictions t = 5..8, the first marked
    assert [frame_index(i, 4) for i in range(8)] == ["t=1", "t=2", "t=3", "t=4", "| t=5", "t=6", "t=7", "t=8"]
    assert frame_ranges(4, 4) == "t = 1..4 context, t = 5..8 predicted"  # the strip's title says the same
    gif = Image.open(tmp_path / "a" / "test000.gif")
    assert gif.n_frames == 8 and gif.height == single.height // 2 - 2 + GIF_HEADER  # a strip row + the header
    header = np.asarray(gif.convert("RGB"))[:GIF_HEADER]
    assert (header < 128).any(), "the GIF frame has no label over it"


def test_a_table_from_exports_imports_neither_torch_nor_yaml_nor_the_suite_loader():
    """``vpbench table`` reads the store or the exports only: the report needs no model code."""
    code = ("import io, sys, contextlib; from vpbench.cli import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): code = main(['table', '--suite', 'ablation', '--from', sys.argv[1]])\n"
            "import vpbench.report.site, vpbench.report.plots, vpbench.report.samples\n"
            "print(code, 'Suite ablation' in out.getvalue(), sorted(m for m in ('torch', 'yaml', 'vpbench.config.suites', "
            "'vpbench.config.resolution', 'vpbench.interface.registry') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(LEADERBOARDS / "ablation")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.stdout.split("\n")[0] == "0 True []", done.stdout + done.stderr


@pytest.mark.skipif("leaderboard" not in SUITES, reason="no committed leaderboard")
def test_every_trained_row_of_the_leaderboard_has_a_colour_of_its_own():
    # twelve rows (copy-last drawn in black): a palette that repeats after ten gave TAU ConvLSTM's orange
    from matplotlib.colors import to_hex

    from vpbench.report.plots import _colours

    runs, _ = from_csv(LEADERBOARDS / "leaderboard")
    colours = _colours(runs, _suite("leaderboard"))
    trained = [to_hex(colour) for label, colour in colours.items() if label != "copy-last"]
    assert len(trained) == 11 and len(set(trained)) == 11, colours
