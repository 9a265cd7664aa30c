"""Planning: which runs execute, and the claim on each (DESIGN §2, step 1).

:func:`identify` names every resolved config once by its run id (the content hash of
:func:`vpbench.config.resolution.run_id_of`). :func:`settled` answers from the store alone whether a run needs
nothing (complete, or failed and kept). :func:`claim` takes the run's folder lock (``.lock``,
``flock``: one process of this host writes a run folder at a time) and its lease in the store (one
process of any host that shares the store executes the run: :class:`Lease`), checks the store again
under both, and writes the run's ``running`` record, its ``config.yaml`` and its manifest. Every
executor goes through these three, so skipping and claiming are written once.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import torch

from vpbench.config.resolution import run_id_of
from vpbench.config.schema import RunConfig
from vpbench.measure.profiling import profile_key
from vpbench.errors import StoreError
from vpbench.store import Store

LEASE_SECONDS = 120.0  # a claim's lease in the store; its heartbeat renews it every third of that


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


class Lease:
    """This process's lease on one run in the store, renewed by a daemon thread every third of
    ``seconds`` until :meth:`release`, so it expires only if this process dies (or stalls that long).

    A renewal that finds the lease gone (another host took the run over after an expiry) says so on
    stderr once; a renewal the store refuses (a full disk) is retried at the next beat.
    """

    def __init__(self, store: Store, run_id: str, seconds: float | None = None):
        self.store, self.run_id = store, run_id
        self.seconds = LEASE_SECONDS if seconds is None else seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def take(self) -> str | None:
        """Hold the run and start the heartbeat: None, or the other holder whose lease is live."""
        other = self.store.take_lease(self.run_id, self.holder, self.seconds, _gone)
        if other is None:
            self._beat = threading.Thread(target=self._renew, name=f"lease-{self.run_id}", daemon=True)
            self._beat.start()
        return other

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.store.renew_lease(self.run_id, self.holder, self.seconds):
                    print(f"run {self.run_id}: its lease in {self.store.path} was taken over by another process "
                          "(this one went without a heartbeat past the expiry)", file=sys.stderr, flush=True)
                    return
            except StoreError as exc:
                print(f"run {self.run_id}: lease not renewed ({exc}); retrying", file=sys.stderr, flush=True)

    def release(self) -> None:
        """Stop the heartbeat and give the lease back; where the store refuses the write (a full disk) the
        lease is left to expire, and a later claim on this host sees that its holder is gone."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
            try:
                self.store.release_lease(self.run_id, self.holder)
            except StoreError:
                pass


def _gone(holder: str) -> bool:
    """Whether a lease holder (``host:pid:token``) is known to be gone: a process of this host that no
    longer runs, or an earlier claim of this very process (one that could not give its lease back)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's: only its expiry tells
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Claim:
    """A run this process holds: its folder's lock and its lease in the store, until :meth:`release`.

    ``profile``: the store's profile for the run's :func:`~vpbench.measure.profiling.profile_key`, if
    one was measured before (execution then reuses it).
    """

    run: PlannedRun
    run_dir: Path
    profile_key: str
    profile: dict | None
    _lock: IO[str]
    _lease: Lease = field(repr=False)

    def release(self) -> None:
        try:
            self._lease.release()
        finally:
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
    """Hold ``run``'s folder and its lease and record it ``running``; or the outcome when another process
    of this host or another holds it (``busy``) or finished it meanwhile (``skipped``)."""
    run_dir = runs_dir / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = (run_dir / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return Outcome(run.run_id, run.label, "busy", "running in another process")
    lease = Lease(store, run.run_id)
    try:
        other = lease.take()
        if other is not None:
            lock.close()
            return Outcome(run.run_id, run.label, "busy", f"running in {other} (its lease in the store)")
        record = store.get(run.run_id)
        if record is not None and record["status"] == "complete":  # finished by another process meanwhile
            lease.release()
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
        return Claim(run, run_dir, key, store.cached_profile(key), lock, lease)
    except BaseException:
        lease.release()
        lock.close()
        raise


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
