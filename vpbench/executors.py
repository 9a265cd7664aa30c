"""Where runs execute, and what one run does.

:func:`execute_run` is the pipeline of one run: data -> predictor from the registry -> profile ->
train (selecting on val) -> evaluate on test -> record. :class:`InProcessExecutor` runs a list of
resolved configs one after the other: it skips every run the store holds as complete, resumes an
interrupted one from its checkpoint, records a failure with its error and carries on, and leaves a
run that another process holds (a lock on its folder) to that process.

Under ``torchrun`` every process runs the same executor with its :class:`~vpbench.distributed.Group`:
process 0 decides what to run (and broadcasts it), holds the lock and writes the store; all of them
train and evaluate each run together. A run that fails in one of several processes ends them all
(the others would wait on it forever); it is recorded as failed when process 0 saw the error, and
torchrun's restarts resume it.
"""

from __future__ import annotations

import fcntl
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from vpbench import registry
from vpbench.config import run_id_of
from vpbench.data import load_splits
from vpbench.distributed import SINGLE, Group
from vpbench.errors import VpbenchError
from vpbench.fast import FastPaths, accelerate
from vpbench.metrics import LPIPSModel, load_lpips
from vpbench.profiling import profile_key, profile_run
from vpbench.schema import RunConfig
from vpbench.store import Store, manifest
from vpbench.tensorboard_log import TensorBoardLog
from vpbench.train import seed_everything, train


@dataclass
class Outcome:
    run_id: str
    label: str
    status: Literal["complete", "skipped", "failed", "busy"]
    error: str | None = None
    wall_s: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cpu``, ``cuda`` or ``cuda:N`` where that device exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VpbenchError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise VpbenchError(f"--device {name!r}: no CUDA device is available here (use cpu or auto)")
        if device.index is not None and device.index >= count:
            raise VpbenchError(f"--device {name!r}: only {count} CUDA device(s) here (cuda:0 .. cuda:{count - 1})")
    elif device.type != "cpu":
        raise VpbenchError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return device


def execute_run(cfg: RunConfig, run_dir: Path, store: Store, device: torch.device,
                lpips_model: LPIPSModel | None, progress: bool = True, fast: FastPaths = FastPaths(),
                group: Group = SINGLE, log: str = "none") -> dict | None:
    """Run ``cfg`` end to end in ``run_dir``; return its metrics (None for a profile-only run).

    ``fast``: the model-level fast paths to train and evaluate with (fuse, channels_last, compile;
    :func:`vpbench.fast.accelerate`). They change no parameter and no run id; reduced precision in
    training is ``train.amp``, part of the run's identity.

    The profile is stored as soon as it is measured, once per model config and geometry
    (:func:`~vpbench.profiling.profile_key`): later seeds and suites reuse it. The caller records the metrics.
    ``group``: the processes training this run together; process 0 profiles and prepares the data first.
    ``log``: ``tensorboard`` also writes the training curves under ``run_dir/tb`` (:mod:`vpbench.tensorboard_log`).
    """
    run_id = run_id_of(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    if group.main:
        key = profile_key(cfg, device)
        profile = store.cached_profile(key)
        if profile is None:  # the first run of this model config and geometry measures it; the others reuse it
            profile = {**profile_run(cfg, device), "profile_key": key}
            store.save_profile(key, profile)
        store.update(run_id, profile=profile)
    if cfg.task == "profile":
        return None
    if not group.main:
        group.barrier()  # process 0 prepares the data set if it is missing; the others then read it
    splits = load_splits(cfg.data, progress=progress and group.main)
    if group.main:
        group.barrier()
    seed_everything(cfg.seed, cfg.deterministic)
    model = accelerate(registry.build(cfg.model, cfg.data.geometry()).to(device), fast.for_training())
    board = TensorBoardLog(run_dir) if log == "tensorboard" and group.main else None
    try:
        result = train(cfg, model, splits, run_dir, device, progress=progress, group=group, board=board)
    finally:
        if board is not None:
            board.close()
    from vpbench.evaluate import evaluate

    metrics = evaluate(cfg, model, splits["test"], run_dir, device, lpips_model, progress=progress, group=group)
    metrics["training"] = {
        "steps": result.steps, "selected_step": result.best_step, "best_val_loss": result.best_val_loss,
        "final_loss": result.final_loss, "resumed_from": result.resumed_from, "note": result.note,
        "selected_on": "val", "converged_at": result.converged_at, "max_steps": cfg.train.steps,
        "val_curve": result.val_curve,
    }
    return metrics


class InProcessExecutor:
    """Runs configs in this process, one at a time; a failed run is tried again unless ``retry_failed`` is off.

    ``device``: a name for :func:`resolve_device`, or the device itself. ``group``: the processes that
    run each config together (torchrun); this one alone by default. ``log``: ``none`` or ``tensorboard``.
    """

    def __init__(self, store: Store, runs_dir: Path | None = None, device: str | torch.device = "auto",
                 progress: bool = True, retry_failed: bool = True, fast: FastPaths = FastPaths(),
                 group: Group = SINGLE, log: str = "none"):
        self.store, self.fast, self.group, self.log = store, fast, group, log
        self.retry_failed = retry_failed
        self.runs_dir = runs_dir or store.path.parent
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.progress = progress
        self._lpips: LPIPSModel | None = None

    def _lpips_model(self, cfg: RunConfig) -> LPIPSModel | None:
        if not cfg.eval.lpips:
            return None
        if self._lpips is None:
            self._lpips = load_lpips(self.device)
        return self._lpips

    def run(self, runs: list[tuple[str, RunConfig]], suite: str | None = None) -> list[Outcome]:
        outcomes = []
        main = self.group.main
        for index, (label, cfg) in enumerate(runs, start=1):
            run_id = run_id_of(cfg)
            prefix = f"[{index}/{len(runs)}] {label} on {cfg.sources['data']} (seed {cfg.seed}, {cfg.scale}) {run_id}"
            record = self.group.broadcast(self.store.get(run_id) if main else None)
            if record is not None and record["status"] == "complete":
                if suite and main:
                    self.store.add_to_suite(suite, run_id, label)
                outcomes.append(Outcome(run_id, label, "skipped"))
                if main:
                    print(f"{prefix}: complete, skipped", flush=True)
                continue
            if record is not None and record["status"] == "failed" and not self.retry_failed:
                if suite and main:
                    self.store.add_to_suite(suite, run_id, label)
                outcomes.append(Outcome(run_id, label, "failed", record["error"]))
                if main:
                    print(f"{prefix}: failed before, kept (--retry-failed no): {record['error']}", flush=True)
                continue
            outcome = self._execute(label, cfg, run_id, suite)
            outcomes.append(outcome)
            detail = f": {outcome.error}" if outcome.error else ""
            if main:
                print(f"{prefix}: {outcome.status} in {outcome.wall_s:.1f} s{detail}", flush=True)
        return outcomes

    def _execute(self, label: str, cfg: RunConfig, run_id: str, suite: str | None) -> Outcome:
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        if not self.group.main:  # process 0 holds the lock and writes the store; this one follows its decision
            decision = self.group.broadcast(None)
            if decision != "execute":
                return Outcome(run_id, label, decision, "running in another process" if decision == "busy" else None)
            started = time.perf_counter()
            execute_run(cfg, run_dir, self.store, self.device, self._lpips_model(cfg), self.progress, self.fast,
                        self.group, self.log)
            return Outcome(run_id, label, "complete", None, time.perf_counter() - started)
        with (run_dir / ".lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.group.broadcast("busy")
                return Outcome(run_id, label, "busy", "running in another process")
            record = self.store.get(run_id)
            if record is not None and record["status"] == "complete":  # finished by another process meanwhile
                self.group.broadcast("skipped")
                if suite:
                    self.store.add_to_suite(suite, run_id, label)
                return Outcome(run_id, label, "skipped")
            self.group.broadcast("execute")
            (run_dir / "error.log").unlink(missing_ok=True)  # from an earlier failed attempt
            (run_dir / "config.yaml").write_text(cfg.to_yaml())
            self.store.start(run_id, cfg.to_dict(), run_dir)
            if suite:
                self.store.add_to_suite(suite, run_id, label)
            self.store.update(run_id, manifest={**manifest(cfg.seed, cfg.deterministic, str(self.device)),
                                                "fast_paths": self.fast.for_training().label,
                                                "processes": self.group.world})
            started = time.perf_counter()
            try:
                metrics = execute_run(cfg, run_dir, self.store, self.device, self._lpips_model(cfg), self.progress,
                                      self.fast, self.group, self.log)
            except Exception as exc:  # recorded, and the suite goes on
                wall = time.perf_counter() - started
                (run_dir / "error.log").write_text(traceback.format_exc())
                message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                self.store.fail(run_id, message, wall)
                if self.group.distributed:  # the other processes may wait on this one: end them all
                    raise
                return Outcome(run_id, label, "failed", message, wall)
            wall = time.perf_counter() - started
            self.store.complete(run_id, metrics, wall)
            return Outcome(run_id, label, "complete", None, wall)
