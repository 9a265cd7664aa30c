"""A run killed with SIGKILL during training resumes from its checkpoint and ends with exactly the
metrics of an uninterrupted run of the same config (deterministic mode, CPU): for a plain MSE run
and for STRPM's GAN + LP run, whose discriminator is part of the checkpoint."""

import json
import signal
import subprocess
import time

import pytest

from conftest import REFERENCE_RUN, REPO, vpbench_command
from vpbench.store import Store



def _run(args, store, env):
    return subprocess.run(vpbench_command(*args, "--store", str(store)), capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("model,steps,kill_at,checkpoint_every", [("convlstm", 80, 25, 10), ("strpm", 24, 14, 8)])
def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path, cli_env, request, model, steps, kill_at,
                                                              checkpoint_every):
    if model == "convlstm":  # the session's reference config and run; this one trains on one thread as it did
        args, cli_env = REFERENCE_RUN, {**cli_env, "OMP_NUM_THREADS": "1"}
    else:  # two validations (on LPIPS, STRPM's val metric), one before the kill and one after it
        args = ["run", "--model", model, "--set", f"train.steps={steps}", "--set",
                f"train.checkpoint_every={checkpoint_every}", "--set", f"train.val_every={steps // 2}", "--no-progress"]
    killed_store = tmp_path / "killed" / "results.sqlite"
    process = subprocess.Popen(vpbench_command(*args, "--store", str(killed_store)), env=cli_env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    log = None
    while time.time() < deadline:
        logs = list(killed_store.parent.glob("*/train.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= kill_at:
            log = logs[0]
            break
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    assert log is not None, f"training never reached step {kill_at}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    (record,) = Store(killed_store).runs()
    assert record["status"] == "running"  # killed mid-training, not finished
    checkpoint_step = max(json.loads(line)["step"] for line in log.read_text().splitlines())
    assert checkpoint_step < steps

    resumed = _run(args, killed_store, cli_env)
    assert resumed.returncode == 0, resumed.stderr
    clean = _run(args, tmp_path / "clean" / "results.sqlite", cli_env)
    assert clean.returncode == 0, clean.stderr

    (after,) = Store(killed_store).runs()
    (reference,) = Store(tmp_path / "clean" / "results.sqlite").runs()
    assert after["run_id"] == reference["run_id"] and after["status"] == "complete"
    assert after["metrics"]["training"]["resumed_from"] >= checkpoint_every
    assert reference["metrics"]["training"]["resumed_from"] is None
    for metric in ("psnr", "ssim", "lpips"):
        if metric in reference["metrics"]:
            assert after["metrics"][metric]["per_clip"] == reference["metrics"][metric]["per_clip"]
    assert after["metrics"]["training"]["best_val_loss"] == reference["metrics"]["training"]["best_val_loss"]
    assert after["metrics"]["training"]["final_loss"] == reference["metrics"]["training"]["final_loss"]
    assert after["config"]["train"]["loss"] == ("mse+gan+lp" if model == "strpm" else "mse")
    assert after["metrics"]["training"]["val_curve"] == reference["metrics"]["training"]["val_curve"]
    assert after["metrics"]["training"]["val_metric"] == ("lpips" if model == "strpm" else "mse")
