"""The in-process executor: planned runs one after the other in this process (or in torchrun's processes).

For each run: :func:`~vpbench.run.plan.settled` skips it when the store needs nothing (complete; failed
and ``retry_failed`` off), :func:`~vpbench.run.plan.claim` holds its folder and records it ``running``
(a run another process holds is left to it, ``busy``), :func:`~vpbench.run.execute.execute_run`
runs it, and :mod:`vpbench.run.record` stores the result or the failure, after which the suite goes on.

Under ``torchrun`` every process runs this executor with its :class:`~vpbench.run.distributed.Group`:
process 0 plans, claims and records (and broadcasts its decision); all of them execute each run
together. A run that fails in one of several processes ends them all (the others would wait on it
forever); it is recorded as failed when process 0 saw the error, and torchrun's restarts resume it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vpbench.measure.metrics import LPIPSModel, load_lpips
from vpbench.run.distributed import SINGLE, Group
from vpbench.run.execute import execute_run, needs_lpips, resolve_device
from vpbench.run.fast import FastPaths
from vpbench.run.plan import Claim, Outcome, PlannedRun, claim, failure_message, settled, unclaimable
from vpbench.run.record import record_failure, record_result
from vpbench.store import Store, manifest


class InProcessExecutor:
    """Runs planned runs in this process, one at a time; a failed run is tried again unless ``retry_failed`` is off.

    ``device``: a name for :func:`~vpbench.run.execute.resolve_device`, or the device itself. ``group``: the
    processes that run each config together (torchrun); this one alone by default. ``log``: ``none`` or ``tensorboard``.
    ``worker``: ``"K/N"`` when this is one of N executors walking the same runs: it prints only the runs it ran.
    """

    def __init__(self, store: Store, runs_dir: Path | None = None, device: str | torch.device = "auto",
                 progress: bool = True, retry_failed: bool = True, fast: FastPaths = FastPaths(),
                 group: Group = SINGLE, log: str = "none", worker: str | None = None):
        self.store, self.fast, self.group, self.log, self.worker = store, fast, group, log, worker
        self.retry_failed = retry_failed
        self.runs_dir = runs_dir or store.path.parent
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.progress = progress
        self._lpips: LPIPSModel | None = None

    def _lpips_model(self, run: PlannedRun) -> LPIPSModel | None:
        if not needs_lpips(run.cfg):
            return None
        if self._lpips is None:
            self._lpips = load_lpips(self.device)
        return self._lpips

    def run(self, runs: list[PlannedRun], suite: str | None = None) -> list[Outcome]:
        outcomes = []
        for index, run in enumerate(runs, start=1):
            outcome = self._run(run, suite)
            outcomes.append(outcome)
            if self.worker is not None and outcome.status in ("skipped", "busy"):
                continue  # another worker's
            if self.group.main:
                who = f"worker {self.worker} " if self.worker else ""
                print(f"{who}[{index}/{len(runs)}] {run.describe()}: {_status_line(outcome)}", flush=True)
        return outcomes

    def _run(self, run: PlannedRun, suite: str | None) -> Outcome:
        main = self.group.main
        done = self.group.broadcast(settled(self.store, run, suite, self.retry_failed) if main else None)
        if done is not None:
            return done
        held = None
        if main:
            try:
                held = claim(self.store, run, self.runs_dir, suite, self._manifest(run), self.device)
            except OSError as exc:  # its folder cannot be written (full, read-only): the run fails, the suite goes on
                held = unclaimable(self.store, run, self.runs_dir, suite, exc)
            decision = self.group.broadcast("execute" if isinstance(held, Claim) else held)
        else:  # process 0 holds the lock and writes the store; this one follows its decision
            decision = self.group.broadcast(None)
        if decision != "execute":
            return decision
        started = time.perf_counter()
        try:
            result = execute_run(run.cfg, self.runs_dir / run.run_id, self.device, held.profile if main else None,
                                 self._lpips_model(run), self.progress, self.fast, self.group, self.log)
        except Exception as exc:  # recorded, and the suite goes on
            outcome = Outcome(run.run_id, run.label, "failed", failure_message(exc), time.perf_counter() - started)
            if main:
                outcome = record_failure(self.store, held, outcome.error, outcome.wall_s)
            if self.group.distributed:  # the other processes may wait on this one: end them all
                raise
            return outcome
        finally:
            if main:
                held.release()
        wall = time.perf_counter() - started
        if main:
            return record_result(self.store, held, result, wall)
        return Outcome(run.run_id, run.label, "complete", None, wall)

    def _manifest(self, run: PlannedRun) -> dict:
        return {**manifest(run.cfg.seed, run.cfg.deterministic, str(self.device)),
                "fast_paths": self.fast.for_training().label, "processes": self.group.world}


def _status_line(outcome: Outcome) -> str:
    if outcome.status == "skipped":
        return "complete, skipped"
    if outcome.earlier:
        return f"failed before, kept (--retry-failed no): {outcome.error}"
    detail = f": {outcome.error}" if outcome.error else ""
    return f"{outcome.status} in {outcome.wall_s:.1f} s{detail}"
