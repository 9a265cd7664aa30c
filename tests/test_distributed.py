"""One run trained by two gloo processes under torchrun (``vpbench run --ddp 2``): the same metrics as
one process with the same global batch, the same run id, and a resume after one process is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import REFERENCE_RUN, REPO, vpbench_command
from vpbench.data.loader import StepBatchSampler
from vpbench.interface.batch_slice import batch_slice, slicing_batches
from vpbench.run.distributed import Group, check_batch
from vpbench.errors import VpbenchError
from vpbench.interface.predictor import mix_frames
from vpbench.store import Store

ARGS = REFERENCE_RUN


def test_each_process_takes_a_contiguous_slice_of_the_same_global_batch():
    one = list(StepBatchSampler(40, 4, seed=3, start=5, stop=15))
    parts = [list(StepBatchSampler(40, 4, seed=3, start=5, stop=15, part=slice(r * 2, r * 2 + 2))) for r in (0, 1)]
    assert [a + b for a, b in zip(*parts)] == one


def test_scheduled_sampling_draws_the_global_batch_coins_in_every_process():
    truth, predicted = torch.ones(6, 1, 2, 2), torch.zeros(6, 1, 2, 2)
    torch.manual_seed(0)
    whole = mix_frames(truth, predicted, 0.5)  # [6, 1, 2, 2]
    halves = []
    for rank in (0, 1):
        torch.manual_seed(0)
        with slicing_batches(rank, 2):
            assert batch_slice(3) == (6, slice(3 * rank, 3 * rank + 3))
            halves.append(mix_frames(truth[:3], predicted[:3], 0.5))
    assert torch.equal(torch.cat(halves), whole)


def test_a_global_batch_the_processes_cannot_share_is_a_clear_error():
    assert check_batch(8, Group(1, 4), "train.batch_size") == 2
    with pytest.raises(VpbenchError, match="train.batch_size = 6 is not divisible by the 4 processes"):
        check_batch(6, Group(0, 4), "train.batch_size")


@pytest.fixture
def one_process(reference_run) -> dict:
    """The 1-process run of ARGS (global batch 4): the session's reference run."""
    return reference_run


def _assert_same_run(record: dict, reference: dict) -> None:
    assert record["run_id"] == reference["run_id"] and record["status"] == "complete"
    assert record["manifest"]["processes"] == 2 and reference["manifest"]["processes"] == 1
    for metric in ("psnr", "ssim", "lpips"):
        if metric in reference["metrics"]:  # every test clip once, in the same order
            torch.testing.assert_close(torch.tensor(record["metrics"][metric]["per_clip"]),
                                       torch.tensor(reference["metrics"][metric]["per_clip"]), rtol=1e-4, atol=1e-5)
    training, expected = record["metrics"]["training"], reference["metrics"]["training"]
    assert training["selected_step"] == expected["selected_step"]
    assert training["best_val_loss"] == pytest.approx(expected["best_val_loss"], rel=1e-5)
    assert training["final_loss"] == pytest.approx(expected["final_loss"], rel=1e-4)


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_metrics(tmp_path, cli_env, one_process):
    store = tmp_path / "results.sqlite"
    done = subprocess.run(vpbench_command(*ARGS, "--store", str(store), "--ddp", "2"), env=cli_env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = Store(store).runs()
    _assert_same_run(record, one_process)
    assert record["metrics"]["training"]["resumed_from"] is None
    samples = sorted(p.name for p in (tmp_path / record["run_id"] / "samples").iterdir())
    assert samples == ["test000.gif", "test000.png", "test001.gif", "test001.png"]  # eval.samples = 2, once each


def _worker_pid(store: Path, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` whose command line names ``store``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(store).encode() in command and f"RANK={rank}".encode() in environment \
                and any(item.startswith(b"TORCHELASTIC_RUN_ID=") for item in environment):
            return int(entry.name)
    return None


@pytest.mark.slow
def test_a_sigkilled_process_is_restarted_and_the_run_resumes(tmp_path, cli_env, one_process):
    store = tmp_path / "results.sqlite"
    launcher = subprocess.Popen(vpbench_command(*ARGS, "--store", str(store), "--ddp", "2", "--ddp-restarts", "1"),
                                env=cli_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.time() + 300, None
    while time.time() < deadline and killed is None:
        logs = list(tmp_path.glob("*/train.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 25:  # checkpoints of steps 10 and 20 are written
            killed = _worker_pid(store, 1)
            if killed is not None:
                os.kill(killed, signal.SIGKILL)
        assert launcher.poll() is None, launcher.stdout.read()[-3000:]
        time.sleep(0.05)
    assert killed is not None, "training never reached step 25"
    output, _ = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, output[-3000:]  # torchrun started both processes again
    (record,) = Store(store).runs()
    _assert_same_run(record, one_process)
    assert record["metrics"]["training"]["resumed_from"] >= 20
