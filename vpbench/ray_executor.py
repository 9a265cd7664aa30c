"""Suites on a Ray cluster: each run one Ray task, the store written by the driver alone.

``vpbench run --suite S --executor ray [--address auto|HOST:PORT] [--cpus-per-run N] [--gpus-per-run N]``

* Before anything is scheduled the driver skips every run its store holds as complete (by run id,
  the hash of the resolved config), and reuses the profile of every model config it has measured.
* Each other run becomes a task asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs. The task
  runs :func:`vpbench.executors.execute_run` in ``<runs dir>/<run id>`` and returns the metrics and
  the profile; the driver records them (the store is one SQLite file, which only one machine writes).
* A worker that dies mid-run (killed, node lost, Ray's memory monitor) is retried up to
  ``max_retries`` times by Ray, and the retry resumes from the run's last checkpoint. An error raised
  by the run itself (a bad config, CUDA out of memory, a non-finite loss) is not retried: the run is
  recorded as failed with its reason and the suite goes on.
* The driver shows a bar of finished runs with the training step of every running one, read from
  its ``train.jsonl``, and a line when a run starts, is retried, completes or fails.

The runs folder (checkpoints, logs, samples) and the data folder (``VPBENCH_DATA``) must be paths
every node sees at the same place, e.g. one NFS mount; the driver passes its ``VPBENCH_*`` and
``HF_*`` variables to the workers. Ray is an optional extra (``pip install -e ".[ray]"``), imported
by this module only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

import ray
import torch
from tqdm import tqdm

from vpbench import progress as progress_report
from vpbench.config import run_id_of
from vpbench.errors import VpbenchError
from vpbench.executors import Outcome, execute_run, resolve_device
from vpbench.fast import FastPaths
from vpbench.metrics import load_lpips
from vpbench.profiling import profile_key
from vpbench.schema import RunConfig
from vpbench.store import Store, manifest

WORKER_FILE = "worker.json"  # in the run folder: the process running the run now, and how many have started it


class _DriverProfiles:
    """What :func:`execute_run` asks of a store, answered on a worker: the driver's cached profile, or
    the one measured here, which the task returns for the driver to store."""

    def __init__(self, key: str, profile: dict | None):
        self.key, self.profile = key, profile

    def cached_profile(self, key: str) -> dict | None:
        return self.profile if key == self.key else None

    def save_profile(self, key: str, profile: dict) -> None:
        self.key, self.profile = key, profile

    def update(self, run_id: str, profile: dict) -> None:
        self.profile = profile


def _note_worker(run_dir: Path) -> int:
    """Record this process in ``worker.json``; return which start of the run this is (1 for the first)."""
    path = run_dir / WORKER_FILE
    starts = json.loads(path.read_text())["starts"] + 1 if path.is_file() else 1
    path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "starts": starts}))
    return starts


def run_task(cfg: RunConfig, run_dir: str, device_name: str, fast: FastPaths, profile: dict | None,
             threads: int, log: str = "none") -> dict:
    """The body of one run's Ray task: ``{"metrics", "profile", "device", "host", "starts"}``.

    A retried task finds the checkpoints of the attempt before it in ``run_dir`` and resumes there.
    """
    torch.set_num_threads(threads)
    folder = Path(run_dir)
    starts = _note_worker(folder)
    device = resolve_device(device_name)
    profiles = _DriverProfiles(profile_key(cfg, device), profile)
    try:
        lpips_model = load_lpips(device) if cfg.eval.lpips else None
        metrics = execute_run(cfg, folder, profiles, device, lpips_model, progress=False, fast=fast, log=log)
    except Exception:
        (folder / "error.log").write_text(traceback.format_exc())
        raise
    return {"metrics": metrics, "profile": profiles.profile, "device": str(device), "host": socket.gethostname(),
            "starts": starts}


def _forwarded_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(("VPBENCH_", "HF_"))}


def _failure_reason(exc: Exception) -> str:
    """One line: the run's own exception for an error it raised, Ray's account of a lost worker otherwise."""
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the run's exception
    error = cause if isinstance(cause, BaseException) else exc
    return f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"


class RayExecutor:
    """Runs configs as Ray tasks; the interface of :class:`vpbench.executors.InProcessExecutor`.

    ``address``: the cluster to join (``auto``, ``HOST:PORT``; None starts a local one unless Ray is
    already initialised). ``device``: what each task trains on, ``cpu`` or ``cuda`` (the GPU Ray gave it).
    """

    def __init__(self, store: Store, runs_dir: Path | None = None, address: str | None = None,
                 cpus_per_run: float = 1, gpus_per_run: float = 0, max_retries: int = 3, device: str = "cpu",
                 progress: bool = True, retry_failed: bool = True, fast: FastPaths = FastPaths(),
                 poll_s: float = 1.0, log: str = "none"):
        self.store, self.fast, self.progress, self.retry_failed = store, fast, progress, retry_failed
        self.log = log
        self.runs_dir = (runs_dir or store.path.parent).resolve()
        self.address, self.device = address, device
        self.cpus_per_run, self.gpus_per_run, self.max_retries = cpus_per_run, gpus_per_run, max_retries
        self.poll_s = poll_s

    def run(self, runs: list[tuple[str, RunConfig]], suite: str | None = None) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[str, RunConfig, str]] = []
        for label, cfg in runs:  # completed runs are skipped before anything is scheduled
            run_id = run_id_of(cfg)
            record = self.store.get(run_id)
            status = record["status"] if record else None
            if status == "complete" or (status == "failed" and not self.retry_failed):
                if suite:
                    self.store.add_to_suite(suite, run_id, label)
                outcomes[run_id] = Outcome(run_id, label, "skipped" if status == "complete" else "failed",
                                           None if status == "complete" else record["error"])
                print(f"{label} {run_id}: {'complete, skipped' if status == 'complete' else 'failed before, kept'}",
                      flush=True)
            elif run_id not in outcomes and run_id not in {queued for _, _, queued in pending}:
                pending.append((label, cfg, run_id))
        if pending:
            self._connect()
            outcomes.update(self._schedule(pending, suite))
        return [outcomes[run_id_of(cfg)] for _, cfg in runs]

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise VpbenchError(f"--address {self.address}: no Ray cluster there ({exc})") from None

    def _schedule(self, pending: list[tuple[str, RunConfig, str]], suite: str | None) -> dict[str, Outcome]:
        task = ray.remote(run_task).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                            max_retries=self.max_retries, retry_exceptions=False,
                                            runtime_env={"env_vars": _forwarded_environment()})
        threads, device = max(1, int(self.cpus_per_run)), self.device
        submitted: dict[ray.ObjectRef, tuple[str, RunConfig, str, float]] = {}
        for label, cfg, run_id in pending:
            run_dir = self.runs_dir / run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.log").unlink(missing_ok=True)
            (run_dir / "config.yaml").write_text(cfg.to_yaml())
            self.store.start(run_id, cfg.to_dict(), run_dir)
            if suite:
                self.store.add_to_suite(suite, run_id, label)
            cached = self.store.cached_profile(profile_key(cfg, torch.device(device)))
            ref = task.remote(cfg, str(run_dir), device, self.fast.for_training(), cached, threads, self.log)
            submitted[ref] = (label, cfg, run_id, time.perf_counter())

        outcomes: dict[str, Outcome] = {}
        starts: dict[str, int] = {}
        bar = progress_report.bar(show=self.progress, total=len(submitted), desc="runs on Ray", unit="run")
        waiting = list(submitted)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=self.poll_s)
            self._report_progress(bar, [submitted[ref] for ref in waiting], starts)
            for ref in done:
                label, cfg, run_id, started = submitted[ref]
                outcomes[run_id] = self._record(ref, label, cfg, run_id, time.perf_counter() - started)
                bar.update(1)
                detail = f": {outcomes[run_id].error}" if outcomes[run_id].error else ""
                tqdm.write(f"{label} {run_id}: {outcomes[run_id].status} in {outcomes[run_id].wall_s:.1f} s{detail}",
                           file=sys.stdout)
        bar.close()
        return outcomes

    def _report_progress(self, bar: tqdm, running: list[tuple[str, RunConfig, str, float]],
                         starts: dict[str, int]) -> None:
        """A line when a run starts or starts again; the bar's postfix: every running run's step."""
        steps = []
        for label, cfg, run_id, _ in running:
            run_dir = self.runs_dir / run_id
            try:
                worker = json.loads((run_dir / WORKER_FILE).read_text())
            except (OSError, json.JSONDecodeError):
                continue  # not started yet
            if worker["starts"] != starts.get(run_id):
                starts[run_id] = worker["starts"]
                again = f" (start {worker['starts']}: resumes from its last checkpoint)" if worker["starts"] > 1 else ""
                tqdm.write(f"{label} {run_id}: running on {worker['host']} pid {worker['pid']}{again}", file=sys.stdout)
            steps.append(f"{label} {_last_step(run_dir / 'train.jsonl')}/{cfg.train.steps}")
        bar.set_postfix_str(", ".join(steps))

    def _record(self, ref: ray.ObjectRef, label: str, cfg: RunConfig, run_id: str, wall: float) -> Outcome:
        try:
            result = ray.get(ref)
        except (ray.exceptions.RayError, VpbenchError) as exc:
            reason = _failure_reason(exc)
            self.store.fail(run_id, reason, wall)
            return Outcome(run_id, label, "failed", reason, wall)
        profile = result["profile"]
        self.store.save_profile(profile["profile_key"], profile)
        self.store.update(run_id, profile=profile,
                          manifest={**manifest(cfg.seed, cfg.deterministic, result["device"]),
                                    "fast_paths": self.fast.for_training().label, "executor": "ray",
                                    "host": result["host"], "starts": result["starts"]})
        self.store.complete(run_id, result["metrics"], wall)  # None for a profile-only run
        return Outcome(run_id, label, "complete", None, wall)


def _last_step(log: Path) -> int:
    """The last training step ``train.jsonl`` records (0 before the first)."""
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return json.loads(line)["step"]
        except (json.JSONDecodeError, KeyError):
            continue
    return 0
