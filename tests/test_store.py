"""The SQLite store: upserts, statuses, suites, prefix lookup, and two writers at once."""

import multiprocessing
import re

import pytest

from vpbench.config.resolution import RunSpec, resolve
from vpbench.store import Store, manifest


def _config(seed: int = 0) -> dict:
    return resolve(RunSpec("copy_last"), "smoke", {"seed": seed}).to_dict()


def test_a_run_goes_running_then_complete_and_writes_are_idempotent(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    store.start("a" * 16, _config(), tmp_path / "a")
    assert store.get("a" * 16)["status"] == "running"
    metrics = {"steps": [1], "psnr": {"per_step": [20.0], "mean": 20.0, "per_clip": [[20.0]]}}
    store.complete("a" * 16, metrics, wall_s=1.5)
    store.complete("a" * 16, metrics, wall_s=1.5)
    store.start("a" * 16, _config(), tmp_path / "a")  # restarting keeps one row
    (record,) = store.runs()
    assert record["metrics"] == metrics and record["wall_s"] == 1.5 and record["status"] == "running"


def test_failures_suites_and_prefixes(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    store.start("abc0000000000001", _config(0), tmp_path)
    store.start("abd0000000000002", _config(1), tmp_path)
    store.fail("abd0000000000002", "ValueError: bad")
    store.add_to_suite("smoke", "abc0000000000001", "copy_last")
    assert store.get("abd")["error"] == "ValueError: bad"
    assert [r["run_id"] for r in store.runs(suite="smoke")] == ["abc0000000000001"]
    assert store.runs(suite="smoke")[0]["label"] == "copy_last"
    assert [r["run_id"] for r in store.runs(status="failed")] == ["abd0000000000002"]
    with pytest.raises(KeyError, match="ambiguous"):
        store.get("ab")
    with pytest.raises(ValueError, match="status must be one of"):
        store.update("abc0000000000001", status="done")
    assert Store(tmp_path / "missing.sqlite").runs() == []


def _writer(path: str, offset: int) -> None:
    store = Store(path)
    config = _config()
    for i in range(25):
        run_id = f"{offset + i:016d}"
        store.start(run_id, config, "x")
        store.complete(run_id, {"steps": []}, 0.0)


def test_two_processes_write_one_store(tmp_path):
    path = str(tmp_path / "results.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, offset)) for offset in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    records = Store(path).runs(status="complete")
    assert len(records) == 50


def test_manifest_records_versions_and_never_fails():
    record = manifest(seed=3, deterministic=True, device="cpu")
    assert record["seed"] == 3 and record["packages"]["torch"].startswith("2.14.1")
    assert re.fullmatch("[0-9a-f]{40}", record["git_commit"]) and record["device"] == "cpu"  # the tests run in a checkout
    # the CPU, since two machines can train one run id to different numbers (leaderboards/retrain/same_machine.md)
    assert record["cpu"]["model"] and record["cpu"]["capability"]  # e.g. "AVX512"
    assert int(record["cpu"]["count"]) >= 1
