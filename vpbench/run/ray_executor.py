"""Suites on a Ray cluster: each run one Ray task, the store written by the driver alone.

``vpbench run --suite S --executor ray [--address auto|HOST:PORT] [--cpus-per-run N] [--gpus-per-run N]``

* Before anything is scheduled the driver plans as the in-process executor does
  (:mod:`vpbench.run.plan`): it skips every run its store holds as complete, and claims each other
  run, holding the run folder's lock until the run is recorded, so a second driver (or an
  in-process executor) on the same store leaves that run alone (``busy``).
* Each claimed run becomes a task asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs. The task
  runs :func:`vpbench.run.execute.execute_run` in ``<runs dir>/<run id>`` and returns its
  :class:`~vpbench.run.execute.RunResult`; the driver records it (:mod:`vpbench.run.record`; the store
  is one SQLite file, which only one machine writes).
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
from vpbench.config.schema import RunConfig
from vpbench.errors import VpbenchError
from vpbench.measure.metrics import load_lpips
from vpbench.run.execute import RunResult, execute_run, needs_lpips, resolve_device
from vpbench.run.fast import FastPaths
from vpbench.run.plan import Claim, Outcome, PlannedRun, claim, settled, unclaimable
from vpbench.run.record import record_failure, record_result
from vpbench.store import Store, manifest

WORKER_FILE = "worker.json"  # in the run folder: the process running the run now, and how many have started it


def _note_worker(run_dir: Path) -> int:
    """Record this process in ``worker.json``; return which start of the run this is (1 for the first)."""
    path = run_dir / WORKER_FILE
    starts = json.loads(path.read_text())["starts"] + 1 if path.is_file() else 1
    path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "starts": starts}))
    return starts


def run_task(cfg: RunConfig, run_dir: str, device_name: str, fast: FastPaths, profile: dict | None,
             threads: int, log: str = "none") -> dict:
    """The body of one run's Ray task: ``{"result": RunResult, "device", "host", "starts"}``.

    A retried task finds the checkpoints of the attempt before it in ``run_dir`` and resumes there.
    """
    torch.set_num_threads(threads)
    folder = Path(run_dir)
    starts = _note_worker(folder)
    device = resolve_device(device_name)
    try:
        lpips_model = load_lpips(device) if needs_lpips(cfg) else None
        result = execute_run(cfg, folder, device, profile, lpips_model, progress=False, fast=fast, log=log)
    except Exception:
        (folder / "error.log").write_text(traceback.format_exc())
        raise
    return {"result": result, "device": str(device), "host": socket.gethostname(), "starts": starts}


def _forwarded_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(("VPBENCH_", "HF_"))}


def _failure_reason(exc: Exception) -> str:
    """One line: the run's own exception for an error it raised, Ray's account of a lost worker otherwise."""
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the run's exception
    error = cause if isinstance(cause, BaseException) else exc
    return f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"


class RayExecutor:
    """Runs configs as Ray tasks; the interface of :class:`vpbench.run.executors.InProcessExecutor`.

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

    def run(self, runs: list[PlannedRun], suite: str | None = None) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        pending: dict[str, PlannedRun] = {}
        for run in runs:  # completed runs are skipped before anything is scheduled
            done = settled(self.store, run, suite, self.retry_failed)
            if done is not None:
                outcomes[run.run_id] = done
                kept = "complete, skipped" if done.status == "skipped" else f"failed before, kept: {done.error}"
                print(f"{run.describe()}: {kept}", flush=True)
            elif run.run_id not in outcomes:
                pending.setdefault(run.run_id, run)
        if pending:
            self._connect()
            outcomes.update(self._schedule(list(pending.values()), suite))
        return [outcomes[run.run_id] for run in runs]

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise VpbenchError(f"--address {self.address}: no Ray cluster there ({exc})") from None

    def _schedule(self, pending: list[PlannedRun], suite: str | None) -> dict[str, Outcome]:
        task = ray.remote(run_task).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                            max_retries=self.max_retries, retry_exceptions=False,
                                            runtime_env={"env_vars": _forwarded_environment()})
        threads, device = max(1, int(self.cpus_per_run)), torch.device(self.device)
        outcomes: dict[str, Outcome] = {}
        submitted: dict[ray.ObjectRef, tuple[Claim, float]] = {}
        for run in pending:
            info = {**manifest(run.cfg.seed, run.cfg.deterministic, self.device),
                    "fast_paths": self.fast.for_training().label, "executor": "ray"}
            try:
                held = claim(self.store, run, self.runs_dir, suite, info, device)
            except OSError as exc:  # its folder cannot be written: the run fails, the suite goes on
                held = unclaimable(self.store, run, self.runs_dir, suite, exc)
            if isinstance(held, Outcome):  # another driver or executor holds it, finished it, or cannot have it
                outcomes[run.run_id] = held
                left = {"busy": "running in another process, left to it", "skipped": "complete, skipped"}.get(
                    held.status, f"{held.status}: {held.error}")
                print(f"{run.describe()}: {left}", flush=True)
                continue
            ref = task.remote(run.cfg, str(held.run_dir), self.device, self.fast.for_training(), held.profile,
                              threads, self.log)
            submitted[ref] = (held, time.perf_counter())

        starts: dict[str, int] = {}
        bar = progress_report.bar(show=self.progress, total=len(submitted), desc="runs on Ray", unit="run")
        waiting = list(submitted)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=self.poll_s)
            self._report_progress(bar, [submitted[ref][0] for ref in waiting], starts)
            for ref in done:
                held, started = submitted[ref]
                try:
                    outcome = self._record(ref, held, time.perf_counter() - started)
                finally:
                    held.release()
                outcomes[held.run.run_id] = outcome
                bar.update(1)
                detail = f": {outcome.error}" if outcome.error else ""
                tqdm.write(f"{held.run.describe()}: {outcome.status} in {outcome.wall_s:.1f} s{detail}", file=sys.stdout)
        bar.close()
        return outcomes

    def _report_progress(self, bar: tqdm, running: list[Claim], starts: dict[str, int]) -> None:
        """A line when a run starts or starts again; the bar's postfix: every running run's step."""
        steps = []
        for held in running:
            run, run_dir = held.run, held.run_dir
            try:
                worker = json.loads((run_dir / WORKER_FILE).read_text())
            except (OSError, json.JSONDecodeError):
                continue  # not started yet
            if worker["starts"] != starts.get(run.run_id):
                starts[run.run_id] = worker["starts"]
                again = f" (start {worker['starts']}: resumes from its last checkpoint)" if worker["starts"] > 1 else ""
                tqdm.write(f"{run.label} {run.run_id}: running on {worker['host']} pid {worker['pid']}{again}",
                           file=sys.stdout)
            steps.append(f"{run.label} {_last_step(run_dir / 'train.jsonl')}/{run.cfg.train.steps}")
        bar.set_postfix_str(", ".join(steps))

    def _record(self, ref: ray.ObjectRef, held: Claim, wall: float) -> Outcome:
        try:
            answer = ray.get(ref)
        except (ray.exceptions.RayError, VpbenchError) as exc:
            return record_failure(self.store, held, _failure_reason(exc), wall,
                                  trace=_worker_trace(held.run_dir) or f"{type(exc).__name__}: {exc}")
        result: RunResult = answer["result"]
        self.store.update(held.run.run_id, manifest={**manifest(held.run.cfg.seed, held.run.cfg.deterministic,
                                                                answer["device"]),
                                                     "fast_paths": self.fast.for_training().label,
                                                     "executor": "ray", "host": answer["host"],
                                                     "starts": answer["starts"]})
        return record_result(self.store, held, result, wall)


def _worker_trace(run_dir: Path) -> str | None:
    """The traceback the worker wrote to ``error.log``, if it wrote one."""
    try:
        return (run_dir / "error.log").read_text()
    except OSError:
        return None


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
