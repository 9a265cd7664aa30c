"""The command line end to end: the smoke suite, skipping, tables, and one-line errors that touch nothing."""

import subprocess

import pytest

from conftest import REPO, cli, require_lpips_assets, vpbench_command

FIXTURES = REPO / "tests" / "data" / "configs"


def vpbench(*args, env, timeout=600):
    return subprocess.run(vpbench_command(*args), capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


@pytest.mark.parametrize("args,names", [
    (["run", "--model", "nosuchmodel"], "nosuchmodel"),
    (["run", "--model", "convlstm", "--set", "model.name=convlstn"], "unknown model 'convlstn'"),
    (["run", "--suite", "smoke", "--set", "model.hiden=3"], "model.hiden: unknown key (did you mean 'hidden'?)"),
    (["run", "--suite", "smoke", "--set", "data.height=60"], "60x64 is not divisible"),
    (["run", "--config", "missing.yaml"], "config file not found: missing.yaml"),
    (["run", "--suite", "nosuchsuite"], "suites config not found"),
    (["run", "--suite", "smoke", "--scale", "huge"], "--scale 'huge': unknown scale"),
])
def test_user_mistakes_print_one_line_exit_2_and_leave_the_store_untouched(tmp_path, capsys, args, names):
    store = tmp_path / "results.sqlite"
    assert cli(*args, "--store", str(store)) == 2  # in this process, as main() runs from the shell
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpbench: error: ") and names in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not store.exists() and not list(tmp_path.iterdir())


def test_a_mistake_from_the_shell_is_one_line_without_a_traceback(tmp_path, cli_env):
    result = vpbench("run", "--model", "nosuchmodel", "--store", str(tmp_path / "results.sqlite"), env=cli_env)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "nosuchmodel" in result.stderr


@pytest.mark.slow
def test_smoke_suite_runs_skips_and_tables(smoke_run, tmp_path, cli_env):
    first = smoke_run.log.read_text()  # `vpbench run --suite smoke` from a shell, once per session
    assert first.count(": complete in ") == 2 and "done: 2 complete" in first
    store = smoke_run.copy(tmp_path)
    written = {p: p.stat().st_mtime_ns for p in store.parent.rglob("*.pt")}
    second = vpbench("run", "--suite", "smoke", "--store", str(store), "--no-progress", env=cli_env)
    assert second.returncode == 0 and "done: 2 skipped" in second.stdout
    assert written and {p: p.stat().st_mtime_ns for p in store.parent.rglob("*.pt")} == written  # nothing retrained

    table = vpbench("table", "--store", str(store), "--suite", "smoke", "--format", "markdown", env=cli_env).stdout
    rows = [line for line in table.splitlines() if line.startswith("| convlstm") or line.startswith("| copy_last")]
    assert len(rows) == 2
    lpips_required = require_lpips_assets()
    for row in rows:
        cells = row.strip("|").split("|")
        assert len(cells) == 6 + 3 * 5  # 4 steps + mean for PSNR, SSIM, LPIPS
        numbers = [c.strip() for c in cells[6:]]
        assert all(n.replace(".", "").isdigit() for n in numbers[:10])  # PSNR and SSIM are numbers
        if lpips_required:
            assert all(n.replace(".", "").isdigit() for n in numbers[10:]), row

    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    convlstm_dir = next(p for p in run_dirs if list(p.glob("checkpoint-*.pt")))
    assert (convlstm_dir / "samples" / "test000.png").is_file() and (convlstm_dir / "samples" / "test000.gif").is_file()
    assert (convlstm_dir / "config.yaml").is_file() and (convlstm_dir / "best.pt").is_file()
    shown = vpbench("show", convlstm_dir.name[:6], "--store", str(store), env=cli_env)
    assert shown.returncode == 0 and "status: complete" in shown.stdout and '"selected_on": "val"' in shown.stdout
    for fmt, marker in (("latex", r"\toprule"), ("csv", "label,model,dataset")):
        assert marker in vpbench("table", "--store", str(store), "--format", fmt, env=cli_env).stdout


@pytest.mark.slow
def test_workers_share_a_suite_and_train_each_run_once(tmp_path, cli_env):
    import json

    from vpbench.store import Store

    store = tmp_path / "results.sqlite"
    result = vpbench("run", "--suite", "smoke", "--seeds", "3", "--store", str(store), "--workers", "2",
                     "--set", "train.steps=6", "--set", "train.val_every=3", "--set", "eval.lpips=false", env=cli_env)
    assert result.returncode == 0, result.stderr
    ran = [line for line in result.stdout.splitlines() if ": complete in " in line]
    assert len(ran) == 6 and {line.split()[1] for line in ran} == {"1/2", "2/2"}  # both took runs
    assert len({line.split()[-5] for line in ran}) == 6  # six run ids, none twice
    assert sorted(line for line in result.stdout.splitlines() if "done:" in line)[0].startswith("worker 1/2 done: ")
    records = Store(store).runs(status="complete")
    assert len(records) == 6
    trained = [folder for folder in tmp_path.iterdir() if (folder / "train.jsonl").is_file()]
    assert len(trained) == 3  # ConvLSTM's seeds; copy-last trains nothing
    for folder in trained:  # trained by one process: every step once, in order
        steps = [json.loads(line)["step"] for line in (folder / "train.jsonl").read_text().splitlines()]
        assert steps == list(range(1, 7))


@pytest.mark.slow
def test_a_fresh_store_takes_an_export_back_and_skips_its_runs(smoke_run, tmp_path, cli_env):
    exported, again = tmp_path / "exported", tmp_path / "again"
    assert vpbench("export", "--suite", "smoke", "--store", str(smoke_run.store), "--out", str(exported),
                   env=cli_env).returncode == 0
    fresh = tmp_path / "fresh" / "results.sqlite"
    taken = vpbench("import", str(exported), "--store", str(fresh), env=cli_env)
    assert taken.returncode == 0 and "2 run(s) imported" in taken.stdout, taken.stderr
    assert ": 0 run(s) imported into" in vpbench("import", str(exported), "--store", str(fresh),
                                                           env=cli_env).stdout
    rerun = vpbench("run", "--suite", "smoke", "--store", str(fresh), "--no-progress", env=cli_env)
    assert rerun.returncode == 0 and "done: 2 skipped" in rerun.stdout  # taken back, not trained again
    assert not list(fresh.parent.glob("*/checkpoint-*.pt"))
    assert sorted(path.name for path in exported.glob("run_samples/*/samples/*")) == ["test000.gif"] * 2 + ["test000.png"] * 2
    strip = vpbench("samples", "--suite", "smoke", "--store", str(fresh), "--out", str(tmp_path / "strip.png"), env=cli_env)
    assert strip.returncode == 0 and (tmp_path / "strip.png").is_file(), strip.stderr  # drawn from the export's copies
    assert vpbench("export", "--suite", "smoke", "--store", str(fresh), "--out", str(again), env=cli_env).returncode == 0
    assert (again / "clips.csv").read_bytes() == (exported / "clips.csv").read_bytes()
    for name in ("records.json", "runs.csv"):  # clip rows stay in clips.csv; each run keeps when it finished
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name
    tables = [vpbench("table", "--suite", "smoke", "--from", str(folder), env=cli_env).stdout for folder in (exported, again)]
    assert tables[0] == tables[1] and "| convlstm" in tables[0]
    (exported / "records.json").write_text("{}")
    refused = vpbench("import", str(exported), "--store", str(tmp_path / "other.sqlite"), env=cli_env)
    assert refused.returncode == 2 and "records.json" in refused.stderr


@pytest.mark.slow
def test_a_failed_run_is_recorded_and_the_suite_carries_on(tmp_path, cli_env):
    store = tmp_path / "results.sqlite"
    result = vpbench("run", "--suite", str(FIXTURES / "failing_suite.yaml"), "--store", str(store), "--no-progress",
                     env=cli_env)
    assert result.returncode == 1
    assert "too_big_batch" in result.stdout and "failed" in result.stdout and "done: 1 complete, 1 failed" in result.stdout
    listing = vpbench("table", "--runs", "all", "--store", str(store), env=cli_env).stdout
    assert "| copy_last |" in listing
    from vpbench.store import Store

    (failed,) = Store(store).runs(status="failed")
    assert failed["error"] == "DataError: train split has 32 clips, fewer than train.batch_size = 64"
    assert (tmp_path / failed["run_id"] / "error.log").read_text().startswith("Traceback")


def test_models_lists_every_registered_model(cli_env):
    result = vpbench("models", env=cli_env)
    assert result.returncode == 0
    assert "convlstm" in result.stdout and "copy_last" in result.stdout and "ConvLSTM" in result.stdout
    # ConvLSTM at the paper geometry: 16 x 8·128²·5² + encoder 467,456 + decoder 467,520 = 53,363,776
    assert "convlstm          53.36 M" in result.stdout


@pytest.mark.slow
def test_baselines_suite_runs_all_seven_models(tmp_path, cli_env):
    store = tmp_path / "results.sqlite"
    short = ["--set", "train.steps=4", "--set", "train.val_every=2", "--set", "train.checkpoint_every=2",
             "--set", "profile.samples=1", "--set", "profile.throughput_batch=0", "--set", "profile.fvcore=false",
             "--set", "eval.lpips=false"]  # each model through the suite, briefly (fvcore and LPIPS: tested apart)
    result = vpbench("run", "--suite", "baselines", "--store", str(store), "--no-progress", *short, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "done: 7 complete" in result.stdout
    from vpbench.store import Store

    labels = {r["label"] for r in Store(store).runs(suite="baselines", status="complete")}
    assert labels == {"convlstm", "predrnn", "predrnnpp", "e3dlstm", "crevnet", "motionrnn", "copy_last"}


@pytest.mark.slow
def test_profile_strpm_at_4k_on_the_cpu_prints_counts_and_latency(tmp_path, cli_env):
    # one warm-up-free sample keeps the test short; the 4K forward needs about 3 GiB, not 24
    result = vpbench("profile", "--model", "strpm", "--geometry", "sjtu4k", "--samples", "1", "--warmup", "0",
                     "--store", str(tmp_path / "results.sqlite"), env=cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "strpm at 2176x3840 (p 8, sr 16" in out and "parameters: " in out
    assert "per sample" in out and "per step mean" in out and "FLOPs = 2 x MACs" in out
    assert "latency batch_1 (batch 1): median" in out
    from vpbench.store import Store

    (record,) = Store(tmp_path / "results.sqlite").runs()
    assert record["config"]["task"] == "profile" and record["metrics"] is None
    assert record["profile"]["conventions"]["batch"] == 1 and record["profile"]["device"] == "cpu"


def test_table_defaults_to_the_latest_suite_and_samples_put_its_rows_side_by_side(tmp_path, capsys):
    from vpbench.cli import main
    from vpbench.store import Store

    store = tmp_path / "results.sqlite"
    assert main(["table", "--store", str(store)]) == 2
    assert "no results store" in capsys.readouterr().err
    assert main(["run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false"]) == 0
    capsys.readouterr()
    assert main(["table", "--store", str(store)]) == 0  # a run outside any suite: the stored runs, one row each
    captured = capsys.readouterr()
    assert "belongs to no suite: every complete run" in captured.err and "| copy_last |" in captured.out
    assert main(["table", "--runs", "all", "--store", str(store)]) == 0 and "| copy_last |" in capsys.readouterr().out
    assert main(["run", "--suite", "smoke", "--store", str(store), "--no-progress", "--set", "train.steps=2",
                 "--set", "eval.lpips=false"]) == 0
    capsys.readouterr()
    assert Store(store).latest_suite() == "smoke"
    assert main(["table", "--store", str(store)]) == 0
    captured = capsys.readouterr()
    assert "suite smoke (that of the most recent run" in captured.err and "Suite smoke" in captured.out
    assert main(["table", "--suite", "smoke", "--runs", "all", "--store", str(store)]) == 2
    out = tmp_path / "strips" / "smoke.png"
    assert main(["samples", "--suite", "smoke", "--store", str(store), "--out", str(out)]) == 0
    from PIL import Image

    strip = Image.open(out)
    assert strip.width > 8 * 128 and strip.height > 3 * 128  # 8 frames; truth + ConvLSTM + copy-last rows
    capsys.readouterr()
    assert main(["samples", "--suite", "smoke", "--store", str(store), "--out", str(out), "--clip", "7"]) == 2
    assert "--clip 7" in capsys.readouterr().err
    assert main(["samples", "--suite", "smoke", "--store", str(store), "--out", str(out), "--dataset", "vtest"]) == 2
    # a plain run after the suite: the table shows it, not the suite of an earlier run
    assert main(["run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false",
                 "--set", "eval.samples=1"]) == 0
    capsys.readouterr()
    assert main(["table", "--store", str(store)]) == 0 and Store(store).latest_suite() is None
    captured = capsys.readouterr()
    assert "belongs to no suite" in captured.err and captured.out.count("| copy_last |") == 3  # 2 plain, 1 smoke


def test_every_option_of_every_command_has_help_text():
    import argparse

    from vpbench.cli import _parser

    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    walk(sub, f"{name} {command}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(_parser(), "vpbench")
    assert not missing, missing
