"""Checkpoints that are safe to read and survive a crash while they are written.

Reading: every checkpoint is loaded with ``torch.load(weights_only=True)``, which rebuilds tensors
and plain containers only. A file whose pickle asks for anything else (a function to call, an
object to build) is refused with :class:`~vpbench.errors.CheckpointError` naming the file: no code
from it runs. A file that is merely damaged (truncated, not a zip archive) is :class:`Unreadable`.

Writing: a new file is written beside the old one, flushed and fsynced, renamed into place, and
only then is the older one dropped. The resume checkpoints of a run are
``checkpoint-<step>.pt``; the two newest are kept, so a crash or a damaged file falls back to the
previous one, and to a fresh start when none can be read (:func:`load_latest` says which).
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from vpbench.errors import CheckpointError

_RESUME = re.compile(r"^checkpoint-(\d{8})\.pt$")
KEEP = 2  # resume checkpoints kept: the newest and the one before it


class Unreadable(Exception):
    """A damaged checkpoint (truncated, corrupt archive): fall back to another one."""


def save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` atomically and durably (temporary file, fsync, rename, fsync folder).

    The archive is built in memory first and written with plain file I/O, so a full disk is an
    ``OSError`` (errno 28) naming the file, not the zip writer's ``RuntimeError: unexpected pos``.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            _write(handle, buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only folder: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(tmp)) from None
        raise
    except BaseException:  # a kill
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _write(handle, data: memoryview) -> None:
    handle.write(data)


def load(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, tensors and plain containers only.

    Raises CheckpointError when the file asks to run code or build other objects, Unreadable when it
    is damaged.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        asks = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line]
        if not asks:  # not a pickle at all (garbage bytes): damaged, not hostile
            raise Unreadable(f"{path.name}: {' '.join(str(exc).split())[:200]}") from None
        raise CheckpointError(f"{path}: refused to load: the file asks for more than tensors ({asks[0]}); "
                              "no code from it ran. Delete it to start the run again") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise Unreadable(f"{path.name}: {' '.join(str(exc).split())[:200]}") from None


def resume_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"checkpoint-{step:08d}.pt"


def resume_checkpoints(run_dir: Path) -> list[Path]:
    """The run's resume checkpoints, newest first."""
    found = [p for p in run_dir.glob("checkpoint-*.pt") if _RESUME.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def save_resume(obj: dict[str, Any], run_dir: Path, step: int) -> Path:
    """Write the resume checkpoint of ``step``, then drop all but the :data:`KEEP` newest."""
    path = resume_path(run_dir, step)
    save(obj, path)
    for older in resume_checkpoints(run_dir)[KEEP:]:
        older.unlink(missing_ok=True)
    return path


def load_latest(run_dir: Path, device: torch.device | str = "cpu",
                run_id: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """The newest readable resume checkpoint of run ``run_id`` and a sentence saying what was loaded or skipped.

    A checkpoint carries the id of the run that wrote it (its config's hash); one of another run
    (copied in, or from before checkpoints carried it) is skipped like a damaged one, naming the file,
    so the run falls back to its own previous checkpoint or a fresh start. ``(None, "")`` when the run
    has no checkpoint; ``(None, "... restarting from scratch")`` when none can be used. A refused file
    (CheckpointError) is never skipped over.
    """
    paths = resume_checkpoints(run_dir)
    skipped = []
    for path in paths:
        try:
            state = load(path, device)
        except Unreadable as exc:
            skipped.append(str(exc))
            continue
        if run_id is not None and state.get("run_id") != run_id:
            skipped.append(f"{path.name} was written by run {state.get('run_id')!r}, not this run {run_id!r}")
            continue
        note = f"resumed from {path.name}"
        if skipped:
            note = f"checkpoint skipped ({'; '.join(skipped)}); {note}"
        return state, note
    if skipped:
        return None, f"no usable checkpoint ({'; '.join(skipped)}): restarting from scratch"
    return None, ""
