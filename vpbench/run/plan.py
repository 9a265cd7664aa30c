"""Planning: which runs execute, and the claim on each (DESIGN §2, step 1).

:func:`identify` names every resolved config once by its run id (the content hash of
:func:`vpbench.config.resolution.run_id_of`). :func:`settled` answers from the store alone whether a run needs
nothing (complete, or failed and kept). :func:`claim` takes the run's folder lock (``.lock``,
``flock``: one process writes a run folder at a time), checks the store again under it, and writes
the run's ``running`` record, its ``config.yaml`` and its manifest. Every executor goes through these
three, so skipping and claiming are written once.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import torch

from vpbench.config.resolution import run_id_of
from vpbench.config.schema import RunConfig
from vpbench.measure.profiling import profile_key
from vpbench.store import Store


@dataclass(frozen=True)
class PlannedRun:
    """A resolved config, its row label and its run id (computed once, here)."""

    label: str
    cfg: RunConfig
    run_id: str

    def describe(self) -> str:
        return f"{self.label} on {self.cfg.sources['data']} (seed {self.cfg.seed}, {self.cfg.scale}) {self.run_id}"


@dataclass
class Outcome:
    run_id: str
    label: str
    status: Literal["complete", "skipped", "failed", "busy"]
    error: str | None = None
    wall_s: float = 0.0
    earlier: bool = False  # the store's outcome of an earlier attempt (a failed run kept), not this one's


@dataclass
class Claim:
    """A run this process holds: its folder's lock is held until :meth:`release`.

    ``profile``: the store's profile for the run's :func:`~vpbench.measure.profiling.profile_key`, if
    one was measured before (execution then reuses it).
    """

    run: PlannedRun
    run_dir: Path
    profile_key: str
    profile: dict | None
    _lock: IO[str]

    def release(self) -> None:
        self._lock.close()


def identify(runs: list[tuple[str, RunConfig]]) -> list[PlannedRun]:
    """``(label, config)`` -> planned runs; a data set that must exist and does not is an error here,
    before anything is written."""
    return [PlannedRun(label, cfg, run_id_of(cfg)) for label, cfg in runs]


def settled(store: Store, run: PlannedRun, suite: str | None, retry_failed: bool) -> Outcome | None:
    """The outcome of a run that needs no execution (complete; failed and ``retry_failed`` off), else None.

    A settled run still joins ``suite``, under its label.
    """
    record = store.get(run.run_id)
    if record is None or record["status"] == "running" or (record["status"] == "failed" and retry_failed):
        return None
    if suite:
        store.add_to_suite(suite, run.run_id, run.label)
    if record["status"] == "complete":
        return Outcome(run.run_id, run.label, "skipped")
    return Outcome(run.run_id, run.label, "failed", record["error"], earlier=True)


def claim(store: Store, run: PlannedRun, runs_dir: Path, suite: str | None, manifest: dict,
          device: torch.device) -> Claim | Outcome:
    """Hold ``run``'s folder and record it ``running``; or the outcome when another process holds it
    (``busy``) or finished it meanwhile (``skipped``)."""
    run_dir = runs_dir / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return Outcome(run.run_id, run.label, "busy", "running in another process")
    record = store.get(run.run_id)
    if record is not None and record["status"] == "complete":  # finished by another process meanwhile
        lock.close()
        if suite:
            store.add_to_suite(suite, run.run_id, run.label)
        return Outcome(run.run_id, run.label, "skipped")
    (run_dir / "error.log").unlink(missing_ok=True)  # from an earlier failed attempt
    (run_dir / "config.yaml").write_text(run.cfg.to_yaml())
    store.start(run.run_id, run.cfg.to_dict(), run_dir)
    if suite:
        store.add_to_suite(suite, run.run_id, run.label)
    store.update(run.run_id, manifest=manifest)
    key = profile_key(run.cfg, device)
    return Claim(run, run_dir, key, store.cached_profile(key), lock)


def failure_message(exc: BaseException) -> str:
    """``Type: message`` on one line; an OSError names its errno and path (``[Errno 28] ...: 'path'``)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def unclaimable(store: Store, run: PlannedRun, runs_dir: Path, suite: str | None, exc: OSError) -> Outcome:
    """Record ``run`` failed because its folder cannot be written (``exc``: no space, read-only, permission)."""
    message = f"{failure_message(exc)} (the run folder cannot be written)"
    store.start(run.run_id, run.cfg.to_dict(), runs_dir / run.run_id)
    if suite:
        store.add_to_suite(suite, run.run_id, run.label)
    store.fail(run.run_id, message)
    return Outcome(run.run_id, run.label, "failed", message)
