"""Suites on a local Ray cluster (``--executor ray``): the in-process executor's metrics, runs skipped
by their hash before scheduling, a killed worker retried and resumed, a failing run recorded, and two
drivers on one store (two Ray, one in process) training each run once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REFERENCE_RUN, REPO, cli, vpbench_command
from vpbench.store import Store

ray = pytest.importorskip("ray")
FIXTURES = Path(__file__).parent / "data" / "configs"
RUN = ["--device", "cpu", "--no-progress", "--set", "deterministic=true"]


@pytest.fixture(scope="module")
def local_cluster(data_cache):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _assert_same_metrics(record: dict, reference: dict) -> None:
    assert record["run_id"] == reference["run_id"] and record["status"] == "complete"
    for metric in ("psnr", "ssim", "lpips"):
        if metric in reference["metrics"]:
            assert record["metrics"][metric]["per_clip"] == reference["metrics"][metric]["per_clip"], metric
    assert record["metrics"]["training"]["best_val_loss"] == reference["metrics"]["training"]["best_val_loss"]


@pytest.mark.slow
def test_the_smoke_suite_on_ray_stores_the_in_process_metrics(smoke_run, tmp_path, local_cluster, capsys):
    store = tmp_path / "ray" / "results.sqlite"
    assert cli("run", "--suite", "smoke", "--executor", "ray", *RUN, "--store", str(store)) == 0
    on_ray = {record["run_id"]: record for record in Store(store).runs()}
    # the session's in-process run on one thread (with --log tensorboard: the log changes no number)
    reference = {record["run_id"]: record for record in Store(smoke_run.store).runs()}
    assert on_ray.keys() == reference.keys() and len(on_ray) == 2
    for run_id, record in on_ray.items():
        _assert_same_metrics(record, reference[run_id])
        assert record["manifest"]["executor"] == "ray" and record["profile"]["parameters"] == reference[run_id]["profile"]["parameters"]
    assert {row["label"] for row in Store(store).runs(suite="smoke")} == {"convlstm", "copy_last"}

    capsys.readouterr()
    assert cli("run", "--suite", "smoke", "--executor", "ray", *RUN, "--store", str(store)) == 0
    assert capsys.readouterr().out.count("complete, skipped") == 2  # nothing scheduled the second time


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_suite_completes_the_rest(tmp_path, local_cluster):
    store = tmp_path / "results.sqlite"
    assert cli("run", "--suite", str(FIXTURES / "failing_suite.yaml"), "--executor", "ray", *RUN,
               "--store", str(store)) == 1
    records = {record["label"]: record for record in Store(store).runs(suite="failing")}
    assert records["too_big_batch"]["status"] == "failed"
    assert "fewer than train.batch_size = 64" in records["too_big_batch"]["error"]
    assert "DataError" in records["too_big_batch"]["error"]
    assert (tmp_path / records["too_big_batch"]["run_id"] / "error.log").is_file()
    assert records["copy_last"]["status"] == "complete"


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_run_resumes_to_the_uninterrupted_metrics(tmp_path, cli_env,
                                                                                    reference_run):
    args = [*REFERENCE_RUN, "--set", "deterministic=true"]
    store = tmp_path / "ray" / "results.sqlite"
    driver = subprocess.Popen(vpbench_command(*args, "--executor", "ray", "--store", str(store)), env=cli_env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.time() + 300, None
    while time.time() < deadline and killed is None:
        logs = list(store.parent.glob("*/train.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 25:  # the checkpoint of step 20 is written
            killed = json.loads((logs[0].parent / "worker.json").read_text())["pid"]
            os.kill(killed, signal.SIGKILL)
        assert driver.poll() is None, driver.stdout.read()[-3000:]
        time.sleep(0.05)
    assert killed is not None, "training never reached step 25"
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]
    assert "(start 2: resumes from its last checkpoint)" in output

    (record,) = Store(store).runs()
    assert record["manifest"]["starts"] == 2
    assert record["metrics"]["training"]["resumed_from"] >= 20
    _assert_same_metrics(record, reference_run)  # the session's uninterrupted run, on one thread as this task
    assert record["metrics"]["training"]["final_loss"] == reference_run["metrics"]["training"]["final_loss"]


@pytest.mark.slow
def test_three_drivers_on_one_store_train_each_run_once(tmp_path, cli_env):
    # two Ray drivers (each its own local Ray) and an in-process executor plan the same runs at once; each
    # run is trained by one of them (the claim: folder lock and lease), the others leaving or skipping it
    store = tmp_path / "results.sqlite"
    common = ["run", "--suite", "smoke", "--seeds", "2", *RUN, "--set", "train.steps=40", "--store", str(store)]
    ray_driver = vpbench_command(*common, "--executor", "ray", "--cpus-per-run", "1")
    commands = [ray_driver, ray_driver, vpbench_command(*common, "--executor", "inprocess")]
    drivers = [subprocess.Popen(command, env=cli_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for command in commands]
    outputs = [driver.communicate(timeout=900)[0] for driver in drivers]
    assert all(driver.returncode == 0 for driver in drivers), "\n".join(output[-2000:] for output in outputs)
    records = Store(store).runs(suite="smoke")
    assert len(records) == 4 and {r["status"] for r in records} == {"complete"}
    for record in records:
        trained = sum(re.search(rf"{record['run_id']}: complete in [\d.]+ s", output) is not None for output in outputs)
        assert trained == 1, (record["run_id"], outputs)
        assert "start 2" not in "".join(outputs)  # nobody resumed a run that never died
        curve = [step for step, _ in record["metrics"]["training"].get("val_curve") or []]
        assert curve == sorted(set(curve))
        log = tmp_path / record["run_id"] / "train.jsonl"
        if log.is_file():
            steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
            assert steps == list(range(1, len(steps) + 1))
