"""The results store: one SQLite file, one row per run keyed by its content hash.

Every table and plot is a pure function of this store. Writes are single transactions with a busy
timeout (rollback journal), so two processes can write to one store at once; every write is an
upsert, so writing the same record twice changes nothing. Reads open the file read-only
(``mode=ro``): they never write, so ``table`` and ``show`` work on a store the user cannot write
and leave no files behind. A file that is not a readable store is a :class:`StoreError` naming it.

The run record (table ``runs``); fields marked "may be absent" are NULL until known:

=============  ============================================================================
run_id         16 hex digits, the hash of the resolved config + vpbench version + data fingerprint
model          registered model name
dataset        the data the run used: its dataset config's name (``configs/datasets``), or the data set's own
               name where the run's overrides chose other data (``sources.data`` of the config)
scale          smoke | small | paper
seed           training seed
status         running | complete | failed
error          the failure, one line (may be absent)
config         the resolved config as JSON
metrics        may be absent; JSON ``{"steps": [1..horizon], "<metric>": {"per_step": [...],
               "mean": x, "per_clip": [[...per step...] per test clip]}`` for psnr (dB), ssim, lpips
               (unscaled) and OpenSTL's mse_sum, mae_sum (summed over a frame's pixels on [0, 1]);
               ``"psnr_array"``: dB over the whole test array; ``"lpips_source": str``,
               ``"lpips_unavailable"``: reason (present only when LPIPS could not be computed),
               ``"test_clips": n``, ``"training": {steps, selected_step, best_val_loss, final_loss,
               resumed_from, note, selected_on, converged_at, max_steps, val_curve: [[step, val MSE]]}``
profile        may be absent (a failed run has none); JSON from :func:`vpbench.measure.profiling.profile_run`
manifest       JSON from :func:`manifest` (git commit, package versions, device, seeds)
run_dir        the run's artifact folder (checkpoints, samples, log, config.yaml)
wall_s         seconds spent on the run (may be absent)
created_at     ISO time of the first write; updated_at of the last
=============  ============================================================================

Table ``suite_runs(suite, run_id, label)`` records which suite asked for which run and the row
label it gave it: the same run can belong to several suites and is run once. Table
``profiles(key, profile)`` holds one profile per :func:`vpbench.measure.profiling.profile_key` (model config,
geometry, device): the seeds of a model, and the suites that run it, measure it once. Table
``leases(run_id, holder, expires_at)`` says which process (``host:pid:token``) executes a run and until
when (Unix seconds): the claim of :func:`vpbench.run.plan.claim`, taken in one transaction, so two hosts
that share the store never run one run at once; the holder's heartbeat moves the expiry on, and a dead
holder's run is free again once its expiry passes (the hosts' clocks must agree to within the lease).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from vpbench.errors import StoreError
DEFAULT_STORE = Path("runs") / "results.sqlite"
STATUSES = ("running", "complete", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    scale TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
    error TEXT,
    config TEXT NOT NULL,
    metrics TEXT,
    profile TEXT,
    manifest TEXT,
    run_dir TEXT,
    wall_s REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    key TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suite_runs (
    suite TEXT NOT NULL,
    run_id TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (suite, run_id)
);
CREATE TABLE IF NOT EXISTS suites (
    suite TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""
_JSON_FIELDS = ("config", "metrics", "profile", "manifest")
_FILESYSTEM_ERRORS = ("disk is full", "readonly database", "disk I/O error", "unable to open database file")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs finished in one second


class Store:
    """A results store at ``path`` (created on first write, with its folder)."""

    def __init__(self, path: str | Path = DEFAULT_STORE):
        self.path = Path(path)
        self._checked = False  # whether this object has run SQLite's quick check on the file

    @contextmanager
    def _connect(self, readonly: bool) -> Iterator[sqlite3.Connection]:
        """A connection; every SQLite error inside becomes a StoreError naming the file."""
        try:
            if readonly:
                connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60,
                                             isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the results store ({exc})") from None
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=60000")
            if not readonly:
                connection.execute("PRAGMA journal_mode=DELETE")  # also converts stores written in WAL mode
                connection.executescript(_SCHEMA)
            if not self._checked:
                verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise StoreError(f"{self.path}: damaged results store (quick_check: {' '.join(verdict.split())})")
                self._checked = True
            yield connection
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if any(sign in text for sign in _FILESYSTEM_ERRORS):  # the disk or its permissions, not the store
                raise StoreError(f"{self.path}: the store's filesystem refused a write ({text}); the store itself "
                                 "is intact: free space or fix the folder's permissions, then run again") from None
            problem = "not a vpbench results store" if "no such table" in text else "unusable results store"
            raise StoreError(f"{self.path}: {problem} ({exc})") from None
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect(readonly=False) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:  # SQLite has rolled back already after a full disk
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def check_writable(self) -> None:
        """Raise StoreError unless the store can be written and passes SQLite's quick check.

        ``vpbench run`` calls this before it creates anything, so a bad store costs nothing.
        """
        with self._transaction():
            pass

    # ---------------------------------------------------------------- writes

    def start(self, run_id: str, config: dict[str, Any], run_dir: str | Path) -> None:
        """Record ``run_id`` as running (keeping its creation time if it was seen before)."""
        now = _now()
        with self._transaction() as db:
            db.execute(
                """INSERT INTO runs (run_id, model, dataset, scale, seed, status, error, config, run_dir,
                                     created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, 'running', NULL, ?, ?, ?, ?)
                   ON CONFLICT(run_id) DO UPDATE SET status='running', error=NULL, config=excluded.config,
                       run_dir=excluded.run_dir, updated_at=excluded.updated_at""",
                (run_id, config["model"]["name"], config["sources"].get("data") or config["sources"]["dataset"], config["scale"], config["seed"],
                 _json(config, "config"), str(run_dir), now, now),
            )

    def record_suite(self, definition: dict[str, Any]) -> None:
        """Keep the suite's definition as it is run now (labels, order, reference, version, paper numbers)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO suites (suite, definition, recorded_at) VALUES (?, ?, ?)",
                       (definition["name"], json.dumps(definition), _now()))

    def suite_definition(self, suite: str) -> dict[str, Any] | None:
        """The definition the suite last ran with, or None (never run here, or a store older than this table)."""
        if not self.path.is_file():
            return None
        with self._connect(readonly=True) as db:
            try:
                row = db.execute("SELECT definition FROM suites WHERE suite = ?", (suite,)).fetchone()
            except sqlite3.OperationalError:  # a store written before suites were recorded
                return None
        return None if row is None else json.loads(row[0])

    def suites(self) -> list[str]:
        """The suites whose definitions the store recorded, in the order they were first recorded."""
        if not self.path.is_file():
            return []
        with self._connect(readonly=True) as db:
            try:
                rows = db.execute("SELECT suite FROM suites ORDER BY rowid").fetchall()
            except sqlite3.OperationalError:  # a store written before suites were recorded
                return []
        return [row[0] for row in rows]

    def add_to_suite(self, suite: str, run_id: str, label: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO suite_runs (suite, run_id, label) VALUES (?, ?, ?)",
                       (suite, run_id, label))

    def update(self, run_id: str, updated_at: str | None = None, **fields: Any) -> None:
        """Set some of: status, error, metrics, profile, manifest, wall_s; ``updated_at`` (ISO time) is now
        unless given (an imported run keeps the time it finished)."""
        allowed = {"status", "error", "metrics", "profile", "manifest", "wall_s"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"Store.update: unknown fields {sorted(unknown)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"Store.update: status must be one of {STATUSES}, got {fields['status']!r}")
        values = {k: _json(v, k) if k in _JSON_FIELDS and v is not None else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._transaction() as db:
            cursor = db.execute(f"UPDATE runs SET {assignments}, updated_at = ? WHERE run_id = ?",
                                (*values.values(), updated_at or _now(), run_id))
            if cursor.rowcount == 0:
                raise KeyError(f"no run {run_id} in {self.path}")

    def complete(self, run_id: str, metrics: dict, wall_s: float, finished_at: str | None = None) -> None:
        self.update(run_id, finished_at, status="complete", error=None, metrics=metrics, wall_s=wall_s)

    def fail(self, run_id: str, error: str, wall_s: float | None = None) -> None:
        self.update(run_id, status="failed", error=error, wall_s=wall_s)

    def save_profile(self, key: str, profile: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO profiles (key, profile, created_at) VALUES (?, ?, ?)",
                       (key, _json(profile, "profile"), _now()))

    def take_lease(self, run_id: str, holder: str, seconds: float, dead: Callable[[str], bool] = lambda _: False
                   ) -> str | None:
        """Hold ``run_id`` as ``holder`` for ``seconds``: None when taken (free, expired, already its own, or
        held by a holder that ``dead`` knows to be gone), else the holder whose lease is live."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT holder, expires_at FROM leases WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None and row["holder"] != holder and row["expires_at"] > now and not dead(row["holder"]):
                return row["holder"]
            db.execute("INSERT OR REPLACE INTO leases (run_id, holder, expires_at) VALUES (?, ?, ?)",
                       (run_id, holder, now + seconds))
        return None

    def renew_lease(self, run_id: str, holder: str, seconds: float) -> bool:
        """Move ``holder``'s lease on ``run_id`` to ``seconds`` from now; False when it no longer holds it."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE leases SET expires_at = ? WHERE run_id = ? AND holder = ?",
                                (time.time() + seconds, run_id, holder))
            return cursor.rowcount == 1

    def release_lease(self, run_id: str, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE run_id = ? AND holder = ?", (run_id, holder))

    # ---------------------------------------------------------------- reads

    def cached_profile(self, key: str) -> dict[str, Any] | None:
        """The profile stored under ``key``, or None."""
        if not self.path.is_file():
            return None
        with self._connect(readonly=True) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            row = db.execute("SELECT profile FROM profiles WHERE key = ?", (key,)).fetchone() \
                if "profiles" in tables else None
        return json.loads(row[0]) if row else None

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The record of ``run_id`` (a unique prefix is enough), or None."""
        if not self.path.is_file():
            return None
        with self._connect(readonly=True) as db:
            rows = db.execute("SELECT * FROM runs WHERE substr(run_id, 1, ?) = ?",  # literal: no LIKE wildcards
                              (len(run_id), run_id)).fetchall()
        if len(rows) > 1:
            raise KeyError(f"run id prefix {run_id!r} is ambiguous: {', '.join(r['run_id'] for r in rows)}")
        return _decode(rows[0]) if rows else None

    def latest_suite(self) -> str | None:
        """The suite of the most recently updated run (None when that run, a plain ``vpbench run --model``,
        belongs to no suite, or the store is empty)."""
        if not self.path.is_file():
            return None
        with self._connect(readonly=True) as db:
            row = db.execute("SELECT suite_runs.suite FROM runs LEFT JOIN suite_runs USING (run_id) "
                             "ORDER BY runs.updated_at DESC, runs.run_id, suite_runs.suite LIMIT 1").fetchone()
        return row[0] if row else None

    def runs(self, suite: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Records, oldest first, optionally those of one suite and/or one status."""
        if not self.path.is_file():
            return []
        query, args = "SELECT runs.*, NULL AS label FROM runs", []
        clauses = []
        if suite is not None:
            query = "SELECT runs.*, suite_runs.label AS label FROM runs JOIN suite_runs USING (run_id)"
            clauses.append("suite_runs.suite = ?")
            args.append(suite)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._connect(readonly=True) as db:
            rows = db.execute(query + " ORDER BY created_at, run_id", args).fetchall()
        return [_decode(row) for row in rows]


def _json(value: Any, field: str) -> str:
    """Strict JSON: a NaN or inf anywhere is a ValueError naming the field, never a bare NaN in the store."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError(f"{field}: holds a non-finite number (NaN or inf), which the store refuses") from None


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for key in _JSON_FIELDS:
        if record.get(key) is not None:
            record[key] = json.loads(record[key])
    return record


def manifest(seed: int, deterministic: bool, device: str) -> dict[str, Any]:
    """The environment of a run. A value that cannot be read is stored as an error string."""
    packages = {}
    for name in ("torch", "torchvision", "numpy", "lpips", "fvcore", "datasets", "pillow", "vpbench"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError as exc:
            packages[name] = f"error: {exc}"
    import torch

    changes = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if changes is None or changes.startswith("error") else bool(changes),
        "packages": packages,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu(),
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        "seed": seed,
        "deterministic": deterministic,
        "pid": os.getpid(),
    }


def _cpu() -> dict[str, str]:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`) and the instruction set
    torch's kernels dispatch to (e.g. ``AVX512``): two machines that differ in either may train the same run
    id to different numbers (``leaderboards/retrain/same_machine.md``)."""
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(), "count": str(os.cpu_count())}


def _git(*args: str) -> str | None:
    source = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error: {exc}"
    return out.stdout.strip() if out.returncode == 0 else f"error: {out.stderr.strip()}"
