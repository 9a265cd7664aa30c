"""Shared fixtures: offline Hugging Face, one data cache for the session, a small run config."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parent.parent
os.environ["VPBENCH_CONFIGS"] = str(REPO / "configs")


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory) -> Path:
    """Every test shares one prepared-data folder, so each data set is generated once."""
    path = tmp_path_factory.mktemp("vpbench-data")
    os.environ["VPBENCH_DATA"] = str(path)
    return path


@pytest.fixture
def private_data(tmp_path, monkeypatch) -> Path:
    """A data folder of this test's own, so damaging or filling it cannot touch the other tests."""
    folder = tmp_path / "data"
    monkeypatch.setenv("VPBENCH_DATA", str(folder))
    return folder


def cli(*args: str) -> int:
    """``vpbench ARGS`` in this process; the exit code, argparse's own errors included."""
    from vpbench.cli import main

    try:
        return main(list(args))
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def cli_env(data_cache) -> dict[str, str]:
    """The environment for ``vpbench`` subprocesses."""
    env = dict(os.environ)
    env["VPBENCH_DATA"] = str(data_cache)
    return env


def vpbench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vpbench.cli", *args]


# One short ConvLSTM run with checkpoints: the config the resume, torchrun and Ray tests interrupt
REFERENCE_RUN = ["run", "--model", "convlstm", "--device", "cpu", "--no-progress", "--set", "train.steps=80",
                 "--set", "train.checkpoint_every=10", "--set", "train.val_every=40"]


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, data_cache) -> dict:
    """The record of REFERENCE_RUN trained once, uninterrupted, in this process on one torch thread (as a
    Ray task or a subprocess with OMP_NUM_THREADS=1 trains): what every interrupted run must reproduce."""
    import torch

    from vpbench.store import Store

    store = tmp_path_factory.mktemp("reference") / "results.sqlite"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli(*REFERENCE_RUN, "--store", str(store)) == 0
    finally:
        torch.set_num_threads(threads)
    (record,) = Store(store).runs()
    return record


@dataclass(frozen=True)
class SmokeRun:
    """The smoke suite, run once per session as a user runs it from a shell (``vpbench run --suite smoke
    --log tensorboard``, its output redirected to a file), on one torch thread like a Ray task.

    Its store is the reference of the CLI, report, suite-record, site, Ray and fast-path tests: they read
    it, or copy it (:meth:`copy`) before they write.
    """

    store: Path
    log: Path

    def copy(self, folder: Path) -> Path:
        """A copy of the store (and its run folders) under ``folder``; returns the copy's store path."""
        shutil.copytree(self.store.parent, folder / "runs")
        return folder / "runs" / self.store.name


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, data_cache) -> SmokeRun:
    import subprocess

    folder = tmp_path_factory.mktemp("smoke-run")
    store, log = folder / "runs" / "results.sqlite", folder / "run.log"
    with log.open("wb") as output:
        result = subprocess.run(vpbench_command("run", "--suite", "smoke", "--store", str(store), "--log", "tensorboard"),
                                stdout=output, stderr=subprocess.STDOUT, cwd=folder, timeout=900,
                                env={**os.environ, "VPBENCH_DATA": str(data_cache), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, log.read_text()
    return SmokeRun(store, log)


def require_lpips_assets() -> bool:
    """True when the LPIPS weights must be present (CI sets VPBENCH_REQUIRE_LPIPS=1)."""
    return os.environ.get("VPBENCH_REQUIRE_LPIPS") == "1"


def skip_unless_installed(check) -> None:
    """Skip when ``check()`` raises (an asset's package is not installed), unless CI requires the footage
    (VPBENCH_REQUIRE_FOOTAGE=1, set by .ci/run after it installs opencv-doc): then fail."""
    try:
        check()
    except Exception as exc:
        if os.environ.get("VPBENCH_REQUIRE_FOOTAGE") == "1":
            pytest.fail(f"required footage is missing: {exc}")
        pytest.skip(str(exc))
