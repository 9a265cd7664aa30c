"""Clips stored as a Hugging Face ``datasets`` DatasetDict on disk (which clips: :mod:`vpbench.data.sources`).

Layout (``offline-assets.md`` §4): one row per clip, ``video`` = the raw uint8 bytes of a
``[T, C, H, W]`` array and ``shape`` = its four sizes. This is the smallest uncompressed layout and
reads 7-100x faster than ``Array4D``; ``load_from_disk`` memory-maps the Arrow files.

A data set is built into a temporary folder and renamed into place, so two processes that build
the same fingerprint at once both end with one complete copy, and an interrupted build never leaves
a data set that loads. The build writes ``vpbench_manifest.json``: every file with its size, its
sha256 and a sampled hash (:func:`file_digests`). Opening a data set checks it once per process: the
full hashes while the data set is at most :data:`FULL_CHECK_BYTES`, the sampled ones above (and
:func:`verify` with ``full=True`` on demand). A procedural data set that fails the check (a damaged
or missing file, no manifest) is rebuilt, saying which file was wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from vpbench import progress as progress_report
from vpbench.errors import DataError
from vpbench.hashing import sha256_of

SPLITS = ("train", "val", "test")
MANIFEST = "vpbench_manifest.json"
FULL_CHECK_BYTES = 1 << 30  # data sets up to this size are hashed in full when first opened by a process
_CHUNK, _CHUNK_BYTES = 64, 64 << 20  # a chunk while building: at most 64 clips or 64 MiB
_SAMPLE_BLOCKS, _SAMPLE_BLOCK = 64, 1 << 16  # the sampled hash reads 64 blocks of 64 KiB spread over the file
_verified: set[tuple] = set()  # (path, files' sizes and mtimes) checked by this process


def data_root() -> Path:
    """Where prepared data sets live: ``$VPBENCH_DATA``, else ``~/.cache/vpbench/data``."""
    return Path(os.environ.get("VPBENCH_DATA", Path.home() / ".cache" / "vpbench" / "data"))


def prepared_path(name: str) -> Path:
    """Where ``vpbench data prepare --name NAME`` puts a data set."""
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"data set name {name!r}: expected a plain name (letters, digits, '-', '_')")
    return data_root() / "prepared" / name


Rows = Iterator[dict]  # {"video": bytes, "shape": [T, C, H, W], ...}


def file_digests(path: Path) -> dict[str, str | int]:
    """``{"size", "sha256", "sampled"}`` of a file (see :func:`_sampled_digest`)."""
    return {"size": path.stat().st_size, "sha256": sha256_of(path), "sampled": _sampled_digest(path)}


def _sampled_digest(path: Path) -> str:
    """A hash of the file's size and 64 blocks of 64 KiB spread evenly over it: cheap for huge files."""
    size = path.stat().st_size
    sampled = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        for i in range(_SAMPLE_BLOCKS):
            handle.seek(max(0, size - _SAMPLE_BLOCK) * i // (_SAMPLE_BLOCKS - 1))
            sampled.update(handle.read(_SAMPLE_BLOCK))
    return sampled.hexdigest()


def write_manifest(folder: Path, extra: dict | None = None) -> None:
    """Record every file under ``folder`` (but the manifest) with its digests, in ``folder/MANIFEST``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    body = {**(extra or {}), "files": {str(p.relative_to(folder)): file_digests(p) for p in files}}
    (folder / MANIFEST).write_text(json.dumps(body, indent=1, sort_keys=True))


def verify(path: Path, full: bool | None = None) -> str | None:
    """None when the data set at ``path`` matches its manifest, else what is wrong (naming the file).

    ``full``: hash whole files (True), sampled blocks (False), or whole files only while the data set
    is at most FULL_CHECK_BYTES (None). A data set that passed is not hashed again by this process.
    """
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return "missing" if not path.exists() else f"no {MANIFEST} (an interrupted or older build)"
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError) as exc:
        return f"{manifest_path} is unreadable ({exc})"
    stats = {}
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        stat = file.stat()
        if stat.st_size != expected["size"]:
            return f"{file} has {stat.st_size} bytes, the manifest says {expected['size']}"
        stats[name] = (stat.st_size, stat.st_mtime_ns)
    if full is None:
        full = sum(size for size, _ in stats.values()) <= FULL_CHECK_BYTES
    key = (str(path.resolve()), full, tuple(sorted(stats.items())))
    if key in _verified:
        return None
    for name, expected in files.items():
        file = path / name
        if full and file_digests(file)["sha256"] != expected["sha256"]:
            return f"{file} does not match its sha256 in {MANIFEST} (damaged)"
        if not full and _sampled_digest(file) != expected["sampled"]:
            return f"{file} does not match its sampled hash in {MANIFEST} (damaged)"
    _verified.add(key)
    return None


def discard(path: Path) -> None:
    """Move a damaged data set aside (readers that hold its files keep them) and delete it."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def build(path: Path, splits: dict[str, tuple[int, Rows]], extra: dict, progress: bool) -> None:
    """Write ``splits`` (per split: clip count and rows) as a DatasetDict at ``path``, with its manifest.

    Built in a temporary folder beside ``path`` and renamed into place only when complete, so an
    interrupted build leaves nothing that loads. The rows stream to one Arrow file per split in chunks
    of at most ``_CHUNK`` clips or ``_CHUNK_BYTES`` bytes, so memory holds one chunk, never the data set;
    the disk holds the data twice until the saved copy replaces the streamed one.
    """
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        built = {}
        bar = progress_report.bar(show=progress, total=sum(n for n, _ in splits.values()), desc=f"building {path.name}",
                                  unit="clip")
        for split, (_, rows) in splits.items():
            built[split] = datasets.Dataset.from_file(str(_stream(rows, tmp / f"{split}.arrow", bar)))
        bar.close()
        datasets.disable_progress_bars()  # our own bar above covers the build
        datasets.DatasetDict(built).save_to_disk(str(tmp / "dataset"))
        write_manifest(tmp / "dataset", {**extra, "clips": {split: len(d) for split, d in built.items()}})
        progress_report.line(f"built {path}: " + ", ".join(f"{len(d)} {split}" for split, d in built.items()) +
                             " clips", show=progress)
        del built  # the streamed files' memory maps
        try:
            os.replace(tmp / "dataset", path)
        except OSError:
            if verify(path) is not None:  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_COLUMNS = ("video", "shape", "sequence", "start", "block")  # the stored columns, in order; rows carry the first
# two always, the others where the clips come from footage


def _features(names: list[str]):
    import datasets

    kinds = {"video": datasets.Value("binary"), "shape": datasets.Sequence(datasets.Value("int32")),
             "sequence": datasets.Value("string"), "start": datasets.Value("int32"), "block": datasets.Value("string")}
    return datasets.Features({name: kinds[name] for name in names})


def _stream(rows: Rows, target: Path, bar) -> Path:
    """Write ``rows`` to the Arrow file ``target`` chunk by chunk; returns ``target``."""
    from datasets.arrow_writer import ArrowWriter

    writer, names, batch, size = None, ["video", "shape"], [], 0

    def flush() -> None:
        writer.write_batch({name: [r[name] for r in batch] for name in names})
        bar.update(len(batch))

    for row in rows:
        if writer is None:
            names = [name for name in _COLUMNS if name in row]
            writer = ArrowWriter(features=_features(names), path=str(target))
        batch.append(row)
        size += len(row["video"])
        if len(batch) == _CHUNK or size >= _CHUNK_BYTES:
            flush()
            batch, size = [], 0
    if writer is None:  # an empty split: its schema only
        writer = ArrowWriter(features=_features(names), path=str(target))
    elif batch:
        flush()
    writer.finalize()
    return target


def _remove_abandoned_builds(path: Path) -> None:
    """Delete the temporary folders of builds of ``path`` whose process is gone (killed mid-build)."""
    for folder in path.parent.glob(f".{path.name}-*-*"):
        pid = folder.name[len(path.name) + 2:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decode_row(row: dict) -> np.ndarray:
    """One stored clip back to ``[T, C, H, W]`` uint8."""
    return np.frombuffer(row["video"], dtype=np.uint8).reshape(row["shape"])
