"""Clips stored as a Hugging Face ``datasets`` DatasetDict on disk, cached by fingerprint.

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

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Iterator

import numpy as np

from vpbench import progress as progress_report
from vpbench.errors import DataError
from vpbench.hashing import sha256_of
from vpbench.config.schema import DataConfig, RunConfig

SPLITS = ("train", "val", "test")
MANIFEST = "vpbench_manifest.json"
FULL_CHECK_BYTES = 1 << 30  # data sets up to this size are hashed in full when first opened by a process
_CHUNK = 64  # clips per Arrow chunk while building
FOOTAGE_VERSION = 1  # bump when package footage is cut into clips differently
_SAMPLE_BLOCKS, _SAMPLE_BLOCK = 64, 1 << 16  # the sampled hash reads 64 blocks of 64 KiB spread over the file
_verified: set[tuple] = set()  # (path, files' sizes and mtimes) checked by this process


def data_root() -> Path:
    """Where prepared data sets live: ``$VPBENCH_DATA``, else ``~/.cache/vpbench/data``."""
    return Path(os.environ.get("VPBENCH_DATA", Path.home() / ".cache" / "vpbench" / "data"))


_file_sha256 = cache(sha256_of)  # installed assets (digits image, package videos) do not change under a process


def prepared_path(name: str) -> Path:
    """Where ``vpbench data prepare --name NAME`` puts a data set."""
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"data set name {name!r}: expected a plain name (letters, digits, '-', '_')")
    return data_root() / "prepared" / name


def fingerprint(cfg: DataConfig) -> str:
    """A hash of everything that decides the clips' pixels (16 hex digits).

    Generated data: the config, the generator's version and what it renders with (Pillow's font, the
    digits image). Package footage: the config, the video file's sha256, the decoder and the resize
    filter. A prepared data set: its manifest's file hashes (it must exist). The hub: the name.
    """
    import PIL

    content: dict = {"source": cfg.source, "config": dataclasses.asdict(cfg)}
    if cfg.source == "moving_objects":
        from vpbench.data.moving_objects import GENERATOR_VERSION

        content.update(generator=GENERATOR_VERSION, pillow=PIL.__version__)  # the bundled font renders the digits
    elif cfg.source == "moving_digits":
        from vpbench.data.moving_digits import GENERATOR_VERSION, digits_path

        content.update(generator=GENERATOR_VERSION, digits=_file_sha256(digits_path()))
    elif cfg.source == "footage":
        from vpbench.data.decode import RESIZE_FILTER, decoder_version
        from vpbench.data.footage import package_file

        content.update(video=_file_sha256(package_file(cfg.name)), decoder=decoder_version(), filter=RESIZE_FILTER,
                       pillow=PIL.__version__, layout=FOOTAGE_VERSION)
    elif cfg.source == "prepared":
        manifest = prepared_path(cfg.name) / MANIFEST
        if not manifest.is_file():
            raise DataError(f"no prepared data set {cfg.name!r} (looked for {manifest}): make it with "
                            f"`vpbench data prepare --name {cfg.name} --source PATH --layout ...`")
        files = json.loads(manifest.read_text())["files"]
        content["files"] = {name: digests["sha256"] for name, digests in files.items()}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dataset_path(cfg: DataConfig) -> Path:
    if cfg.source == "prepared":
        return prepared_path(cfg.name)
    return data_root() / f"{cfg.source}-{fingerprint(cfg)}"


def estimated_bytes(cfg: DataConfig) -> int:
    """The uint8 payload of a data set: clips x T x C x H x W."""
    clips = cfg.train_clips + cfg.val_clips + cfg.test_clips
    return clips * (cfg.context + cfg.horizon) * cfg.channels * cfg.height * cfg.width


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"


def check_fits(configs: list[RunConfig]) -> None:
    """Refuse runs whose data sets would not fit on the data disk, or whose batches would not fit in memory.

    Data sets already built cost nothing; the others are added up against the free space under
    :func:`data_root`. A batch is ``B x T x C x H x W`` float32 on the host (training or test batch).
    """
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed: dict[Path, int] = {}
    for cfg in configs:
        data = cfg.data
        if data.source in ("prepared", "hub"):
            continue  # made by `vpbench data prepare` or held by the hub: nothing to build here
        path = dataset_path(data)
        if not (path / MANIFEST).is_file():
            needed[path] = estimated_bytes(data)
        frames = (data.context + data.horizon) * data.channels * data.height * data.width
        batch = max(cfg.train.batch_size, cfg.eval.batch_size)
        if batch * frames * 4 > memory:
            raise DataError(f"{cfg.sources.get('dataset', 'data')}: one batch of {batch} clips of "
                            f"{data.context + data.horizon}x{data.channels}x{data.height}x{data.width} float32 "
                            f"needs {_gib(batch * frames * 4)}, more than this machine's {_gib(memory)} of memory")
    if not needed:
        return
    root = data_root()
    existing = next(p for p in (root, *root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    total = sum(needed.values())
    if total > free:
        largest = max(needed, key=needed.get)
        raise DataError(f"the data sets to build need {_gib(total)} under {root} but {_gib(free)} is free "
                        f"(largest: {largest.name}, {_gib(needed[largest])} = clips x T x C x H x W bytes)")


def prepare(cfg: DataConfig, progress: bool = True):
    """The DatasetDict (train/val/test) for ``cfg``, built on first use (or when damaged), memory-mapped after.

    A prepared data set is never rebuilt here: a damaged one is a DataError naming the file, and
    ``vpbench data prepare`` makes it again.
    """
    import datasets
    from tqdm import tqdm

    if cfg.source == "hub":
        return _from_hub(cfg.name)
    path = dataset_path(cfg)
    problem = verify(path, full=None)
    if problem is not None and cfg.source == "prepared":
        raise DataError(f"prepared data set {cfg.name!r}: {problem}; run `vpbench data verify {cfg.name}` and "
                        "prepare it again")
    if problem is not None:
        if path.exists():
            tqdm.write(f"{path}: {problem}: rebuilding it", file=sys.stderr)
            _discard(path)
        splits, extra = _source_clips(cfg)
        build(path, splits, {"fingerprint": fingerprint(cfg), **extra}, progress)  # its manifest hashes what it wrote
    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # passed its checksums, yet unreadable: name it
        raise DataError(f"cannot read the prepared data set {path}: {exc}") from None


def _from_hub(name: str):
    """A Hugging Face hub data set in the binary layout; offline, a DataError at once (no retries)."""
    import datasets

    if datasets.config.HF_DATASETS_OFFLINE:
        raise DataError(f"hub data set {name!r}: the Hugging Face hub is off (HF_DATASETS_OFFLINE=1, vpbench's "
                        "default); set HF_DATASETS_OFFLINE=0 where the hub is reachable, or prepare the data locally")
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # the hub's errors are many; the message says which
        raise DataError(f"hub data set {name!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    missing = [split for split in SPLITS if split not in loaded]
    if missing or not {"video", "shape"} <= set(loaded[SPLITS[0]].column_names):
        raise DataError(f"hub data set {name!r}: expected splits {SPLITS} with columns video (uint8 bytes) and "
                        f"shape [T, C, H, W]; got {dict((k, v.column_names) for k, v in loaded.items())}")
    return loaded


Rows = Iterator[dict]  # {"video": bytes, "shape": [T, C, H, W], ...}


def _generated(generate, cfg: DataConfig, split: str, count: int) -> Rows:
    for index in range(count):
        clip = generate(cfg, split, index)
        yield {"video": clip.tobytes(), "shape": list(clip.shape)}


def _source_clips(cfg: DataConfig) -> tuple[dict[str, tuple[int, Rows]], dict]:
    """Per split, ``(clip count, rows)`` of a generated or package-footage source, and manifest entries."""
    counts = {"train": cfg.train_clips, "val": cfg.val_clips, "test": cfg.test_clips}
    if cfg.source in ("moving_objects", "moving_digits"):
        if cfg.source == "moving_objects":
            from vpbench.data.moving_objects import generate_clip
        else:
            from vpbench.data.moving_digits import generate_clip
        return {split: (n, _generated(generate_clip, cfg, split, n)) for split, n in counts.items()}, \
            {"source": cfg.source}
    from vpbench.data import footage
    from vpbench.data.decode import RESIZE_FILTER, decoder_version

    video = footage.package_file(cfg.name)
    clip_length = cfg.context + cfg.horizon
    sequences = footage.discover(video, "videos")
    plan = footage.plan_by_sequence(sequences, clip_length, cfg.stride)
    splits = {}
    for split in SPLITS:
        specs = plan.clips[split][:counts[split]]
        splits[split] = (len(specs), footage.rows(specs, clip_length, cfg.stride, cfg.height, cfg.width, cfg.fit,
                                                  cfg.channels))
    extra = {"source": f"footage:{cfg.name}", "sources": {video.name: {"size": video.stat().st_size,
                                                                         "sha256": _file_sha256(video)}},
             "licence": footage.PACKAGE_FOOTAGE[cfg.name][3], "decoder": decoder_version(),
             "resize_filter": RESIZE_FILTER, "fit": cfg.fit, "stride": cfg.stride, "clip_length": clip_length,
             "split_origin": plan.origin}
    return splits, extra


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


def _discard(path: Path) -> None:
    """Move a damaged data set aside (readers that hold its files keep them) and delete it."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def build(path: Path, splits: dict[str, tuple[int, Rows]], extra: dict, progress: bool) -> None:
    """Write ``splits`` (per split: clip count and rows) as a DatasetDict at ``path``, with its manifest.

    Built in a temporary folder beside ``path`` and renamed into place only when complete, so an
    interrupted build leaves nothing that loads.
    """
    import datasets

    columns = {"video": datasets.Value("binary"), "shape": datasets.Sequence(datasets.Value("int32")),
               "sequence": datasets.Value("string"), "start": datasets.Value("int32")}
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        built = {}
        bar = progress_report.bar(show=progress, total=sum(n for n, _ in splits.values()), desc=f"building {path.name}",
                                  unit="clip")
        for split, (_, rows) in splits.items():
            chunks, batch = [], []
            for row in rows:
                batch.append(row)
                if len(batch) == _CHUNK:
                    chunks.append(_chunk(batch, columns))
                    bar.update(len(batch))
                    batch = []
            if batch or not chunks:
                chunks.append(_chunk(batch, columns))
                bar.update(len(batch))
            built[split] = datasets.concatenate_datasets(chunks)
        bar.close()
        datasets.disable_progress_bars()  # our own bar above covers the build
        datasets.DatasetDict(built).save_to_disk(str(tmp / "dataset"))
        write_manifest(tmp / "dataset", {**extra, "clips": {split: len(d) for split, d in built.items()}})
        progress_report.line(f"built {path}: " + ", ".join(f"{len(d)} {split}" for split, d in built.items()) +
                             " clips", show=progress)
        try:
            os.replace(tmp / "dataset", path)
        except OSError:
            if verify(path) is not None:  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def _chunk(rows: list[dict], columns: dict):
    import datasets

    names = [name for name in columns if name in (rows[0] if rows else {"video": 0, "shape": 0})]
    return datasets.Dataset.from_dict({name: [row[name] for row in rows] for name in names},
                                      features=datasets.Features({name: columns[name] for name in names}))


def decode_row(row: dict) -> np.ndarray:
    """One stored clip back to ``[T, C, H, W]`` uint8."""
    return np.frombuffer(row["video"], dtype=np.uint8).reshape(row["shape"])
