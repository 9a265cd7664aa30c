"""Hostile and clumsy input: configs that would expand without bound, long values in messages, prefixes
with SQL wildcards, a closed pipe."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, cli, vpbench_command


def _run_file(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_a_billion_laughs_config_is_refused_at_once_in_one_line(tmp_path, capsys):
    aliases = "".join(f"  {c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                      for p, c in zip("abcdefgh", "bcdefghi"))
    path = _run_file(tmp_path, "uses: {model: copy_last}\nx:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + aliases +
                     "train: {lr: *i}\n")
    started = time.perf_counter()
    assert cli("config", "--config", str(path)) == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"refused: its aliases expand to [\d,]{11} nodes", err) and str(path) in err


def test_a_config_file_over_the_size_limit_is_refused(tmp_path, capsys):
    path = _run_file(tmp_path, "uses: {model: copy_last}\nkinds: [" + "1, " * 600_000 + "1]\n")
    assert cli("config", "--config", str(path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the 1,048,576 a config may have" in err


def test_an_error_shows_a_bounded_prefix_of_a_long_value(tmp_path, capsys):
    assert cli("config", "--model", "copy_last", "--set", "train.lr=[" + ",".join(["[1,2,3,4,5,6,7,8]"] * 500) + "]") == 2
    err = capsys.readouterr().err
    assert "train.lr" in err and "..." in err and len(err) < 400


@pytest.mark.parametrize("setting", ["model.hidden=100000", "model.kernel=999"])
def test_a_model_too_large_to_train_is_refused_before_anything_runs(tmp_path, capsys, setting):
    store = tmp_path / "results.sqlite"
    started = time.perf_counter()
    assert cli("run", "--model", "convlstm", "--set", setting, "--store", str(store), "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"model convlstm \(.*" + setting.split(".")[1] + r".*\): [\d,]+ parameters", err)
    assert re.search(r"training needs at least [\d.]+ GiB, more than the [\d.]+ GiB of memory it would train in", err)
    assert not store.exists() and time.perf_counter() - started < 30


def test_a_training_step_whose_activations_do_not_fit_is_refused(tmp_path, capsys):
    # 20,000 clips of the smoke geometry: 2.6 GB of input passes the data checks, but what autograd would
    # save for the backward pass does not fit in this machine's memory
    store = tmp_path / "results.sqlite"
    assert cli("run", "--model", "convlstm", "--set", "train.batch_size=20000", "--store", str(store),
               "--no-progress") == 2
    err = capsys.readouterr().err
    match = re.search(r"([\d,]+) parameters and ([\d.]+) GiB of activations per training step of 20000 clips", err)
    assert match and float(match[2]) > 16 * int(match[1].replace(",", "")) / 2**30  # the activations decide
    assert not store.exists()


def test_a_model_whose_build_does_not_end_is_refused(tmp_path, capsys, monkeypatch):
    from vpbench.measure import profiling

    monkeypatch.setattr(profiling, "BUILD_SECONDS", 1)
    assert cli("run", "--model", "convlstm", "--set", "model.layers=100000", "--store", str(tmp_path / "s.sqlite"),
               "--no-progress") == 2
    assert "building it and one forward on the meta device took more than 1 s" in capsys.readouterr().err


def test_absurd_seed_counts_are_a_usage_error(tmp_path, capsys):
    assert cli("run", "--suite", "smoke", "--seeds", "1000000", "--store", str(tmp_path / "s.sqlite")) == 2
    assert "at most 1000 seeds per run of a suite, got 1000000" in capsys.readouterr().err


def test_show_matches_a_prefix_literally(tmp_path, capsys):
    store = tmp_path / "results.sqlite"
    assert cli("run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false") == 0
    capsys.readouterr()
    assert cli("show", "_", "--store", str(store)) == 2  # `_` is a LIKE wildcard, but no run id starts with it
    assert "no run '_'" in capsys.readouterr().err
    assert cli("show", "%", "--store", str(store)) == 2


def test_a_closed_pipe_ends_quietly(tmp_path, cli_env):
    store = tmp_path / "results.sqlite"
    assert cli("run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false") == 0
    command = " ".join(vpbench_command("table", "--runs", "all", "--store", str(store), "--format", "csv"))
    done = subprocess.run(f"{command} | head -c 1", shell=True, capture_output=True, text=True, env=cli_env, cwd=REPO,
                          timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def _tampered(tmp_path, name: str, edit) -> Path:
    """A copy of the committed ablation export with ``edit(text) -> text`` applied to its file ``name``."""
    folder = tmp_path / "ablation"
    shutil.copytree(REPO / "leaderboards" / "ablation", folder, ignore=shutil.ignore_patterns("plots"))
    (folder / name).write_text(edit((folder / name).read_text()))
    return folder


def _cell(text: str, column: str, value: str, line: int = 2) -> str:
    """``text`` (a CSV) with the cell of ``column`` on ``line`` (1 = the header) set to ``value``."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("name,edit,expected", [
    ("suite.json", lambda text: text[: len(text) // 2], "suite.json: not valid JSON"),
    ("runs.csv", lambda text: _cell(text, "psnr_mean", "banana"), "runs.csv: line 2 (run "),
    ("runs.csv", lambda text: _cell(text, "psnr@1", "nan", line=5), "column psnr@1: 'nan' is not a finite metric"),
    ("runs.csv", lambda text: _cell(text, "ssim_mean", "inf", line=3), "column ssim_mean: 'inf' is not a finite"),
    ("clips.csv", lambda text: _cell(text, "psnr", "NaN", line=40), "clips.csv: line 40"),
])
def test_a_tampered_export_is_one_line_naming_the_file_row_and_column(tmp_path, capsys, name, edit, expected):
    folder = _tampered(tmp_path, name, edit)
    assert cli("table", "--suite", "ablation", "--from", str(folder)) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and expected in captured.err and "Traceback" not in captured.err, captured.err
    assert captured.out == ""  # no table with a NaN in its means, no caption with a wrong seed count


SHORT = ["--no-progress", "--set", "train.steps=4", "--set", "train.val_every=2", "--set", "train.checkpoint_every=2",
         "--set", "eval.lpips=false", "--set", "profile.samples=1", "--set", "profile.throughput_batch=0"]


def _smoke_ids() -> dict[str, str]:
    from vpbench.config.resolution import parse_overrides
    from vpbench.config.suites import expand, load_suite
    from vpbench.run.plan import identify

    overrides = parse_overrides(SHORT[2::2])
    return {run.label: run.run_id for run in identify(expand(load_suite("smoke"), "smoke", cli_overrides=overrides))}


def test_a_run_whose_folder_cannot_be_written_fails_in_one_line_and_the_suite_goes_on(tmp_path, capsys):
    from vpbench.store import Store

    store = tmp_path / "runs" / "results.sqlite"
    blocked = tmp_path / "runs" / _smoke_ids()["convlstm"]
    blocked.parent.mkdir()
    blocked.write_text("")  # a file where the run's folder must go: mkdir fails as on a read-only mount
    assert cli("run", "--suite", "smoke", "--store", str(store), *SHORT) == 1
    out = capsys.readouterr().out
    records = {r["label"]: r for r in Store(store).runs(suite="smoke")}
    assert records["convlstm"]["status"] == "failed" and "[Errno 17] File exists" in records["convlstm"]["error"]
    assert str(blocked) in records["convlstm"]["error"] and "run folder cannot be written" in records["convlstm"]["error"]
    assert records["copy_last"]["status"] == "complete" and "done: 1 complete, 1 failed" in out
    assert all(r["status"] != "running" for r in Store(store).runs())


def test_a_full_disk_while_checkpointing_fails_the_run_removes_its_temporary_file_and_goes_on(tmp_path, monkeypatch):
    import errno

    from vpbench.run import checkpoints
    from vpbench.store import Store

    def full(handle, data):  # the first bytes land, then the disk is full: what ENOSPC does mid-write
        handle.write(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")  # as file.write raises it: no file name

    monkeypatch.setattr(checkpoints, "_write", full)
    store = tmp_path / "runs" / "results.sqlite"
    assert cli("run", "--suite", "smoke", "--store", str(store), *SHORT) == 1
    records = {r["label"]: r for r in Store(store).runs(suite="smoke")}
    assert records["convlstm"]["status"] == "failed"
    assert "OSError: [Errno 28] No space left on device" in records["convlstm"]["error"]
    assert ".pt.tmp'" in records["convlstm"]["error"]  # the file it could not write
    assert records["copy_last"]["status"] == "complete"
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.pt"))  # no half-written file stays


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MiB tmpfs at ``tmp_path / "disk"`` (skipped where this process may not mount one)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_real_full_disk_fails_runs_in_one_line_leaves_no_partial_file_and_recovers(small_disk, capsys):
    import os
    import sqlite3

    from vpbench.store import Store

    store = small_disk / "runs" / "results.sqlite"
    store.parent.mkdir()
    free = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as handle:  # leave 400 kB: the store fits, a checkpoint does not
        handle.write(b"\0" * (free.f_bavail * free.f_frsize - 400_000))
    code = cli("run", "--suite", "smoke", "--store", str(store), *SHORT)
    out, err = capsys.readouterr()
    records = Store(store).runs(suite="smoke")
    failed = [r for r in records if r["status"] == "failed"]
    assert failed, out + err
    for record in failed:  # one line naming the errno and the file that could not be written
        assert "[Errno 28] No space left on device: '" in record["error"] and "\n" not in record["error"]
        assert "unexpected pos" not in record["error"]
    if code == 2:  # the store itself filled up: one line blames its filesystem, not the store
        assert "the store's filesystem refused a write (database or disk is full)" in err
        assert len(err.strip().splitlines()) == 1
    else:
        assert code == 1
    assert not list(small_disk.rglob("*.tmp"))
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    (small_disk / "filler").unlink()  # space again: the same command completes every run
    assert cli("run", "--suite", "smoke", "--store", str(store), *SHORT) == 0
    assert {r["status"] for r in Store(store).runs(suite="smoke")} == {"complete"}, capsys.readouterr().out


# --------------------------------------------------------------------------- one claim per run across hosts


def _planned_run():
    from vpbench.config.resolution import RunSpec, resolve
    from vpbench.run import plan

    (run,) = plan.identify([("ConvLSTM", resolve(RunSpec("convlstm", "moving_digits"), "smoke"))])
    return run


def test_a_run_leased_by_another_host_is_left_to_it_until_its_lease_expires(tmp_path):
    import torch

    from vpbench.run import plan
    from vpbench.store import Store

    store, run, runs_dir = Store(tmp_path / "results.sqlite"), _planned_run(), tmp_path / "runs"
    assert store.take_lease(run.run_id, "elsewhere:41:feed", 60) is None  # another host executes it
    busy = plan.claim(store, run, runs_dir, None, {}, torch.device("cpu"))
    assert busy.status == "busy" and "elsewhere:41:feed (its lease in the store)" in busy.error
    assert store.get(run.run_id) is None  # nothing recorded for a run another host holds
    assert store.take_lease(run.run_id, "elsewhere:41:feed", 0.05) is None  # its last heartbeat; then it dies
    time.sleep(0.1)
    held = plan.claim(store, run, runs_dir, None, {}, torch.device("cpu"))
    assert isinstance(held, plan.Claim) and store.get(run.run_id)["status"] == "running"
    assert store.take_lease(run.run_id, "elsewhere:41:feed", 60) == held._lease.holder  # now this process's
    held.release()
    assert store.take_lease(run.run_id, "elsewhere:41:feed", 60) is None  # released: free at once


def test_a_live_lease_of_a_dead_process_on_this_host_does_not_block_its_run(tmp_path):
    import socket

    import torch

    from vpbench.run import plan
    from vpbench.store import Store

    child = subprocess.Popen(["true"])
    child.wait()  # reaped: its pid no longer runs
    store, run = Store(tmp_path / "results.sqlite"), _planned_run()
    dead = f"{socket.gethostname()}:{child.pid}:0ld"
    assert store.take_lease(run.run_id, dead, 60) is None  # it could not give its lease back (a full disk)
    held = plan.claim(store, run, tmp_path / "runs", None, {}, torch.device("cpu"))
    assert isinstance(held, plan.Claim)
    held.release()


def test_a_lease_is_renewed_while_its_run_executes_and_a_lost_one_is_reported(tmp_path, monkeypatch, capsys):
    import sqlite3

    import torch

    from vpbench.run import plan
    from vpbench.store import Store

    monkeypatch.setattr(plan, "LEASE_SECONDS", 0.3)  # a heartbeat every 0.1 s
    store, run = Store(tmp_path / "results.sqlite"), _planned_run()
    held = plan.claim(store, run, tmp_path / "runs", None, {}, torch.device("cpu"))
    time.sleep(0.9)  # three lease lengths: only the heartbeat keeps it
    assert store.take_lease(run.run_id, "elsewhere:41:feed", 60) == held._lease.holder
    with sqlite3.connect(store.path) as db:  # another host took it over after an expiry
        db.execute("UPDATE leases SET holder = 'elsewhere:41:feed', expires_at = expires_at + 60")
    time.sleep(0.3)
    assert f"run {run.run_id}: its lease in {store.path} was taken over by another process" in capsys.readouterr().err
    held.release()
    assert store.take_lease(run.run_id, "third:7:beef", 60) == "elsewhere:41:feed"  # its lease is not ours to drop
