"""Frames from real footage: video files decoded with PyAV, image folders read with Pillow, and one
antialiased resize.

Every reader yields RGB ``[H, W, 3]`` uint8 frames and raises :class:`~vpbench.errors.DataError`
naming the file when it cannot: an unreadable or truncated video (fewer frames decoded than the
container declares), an image folder whose frames differ in size. :func:`fit_frame` brings a frame
to the stored ``height x width`` with Pillow's Lanczos filter (antialiased when it shrinks), after an
optional centre crop or zero padding to the target's aspect ratio.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from vpbench.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".webm", ".m4v", ".wmv", ".flv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
RESIZE_FILTER = "PIL.Image.LANCZOS (antialiased)"
FITS = ("resize", "crop", "pad")


def decoder_version() -> str:
    """The decoder and the FFmpeg it bundles, for manifests and fingerprints."""
    import av

    codec = ".".join(str(part) for part in av.library_versions.get("libavcodec", ()))
    return f"PyAV {av.__version__} (libavcodec {codec})"


@contextmanager
def _opened(path: Path):
    """``(container, video stream)`` of a video file; an unreadable one is a DataError naming it."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: not a readable video ({' '.join(str(exc).split())})") from None
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: has no video stream")
        yield container, container.streams.video[0]


def _check_count(path: Path, found: int, declared: int, spanned: int | None = None) -> None:
    """Frames found against the count the container declares (0: it does not say).

    ``spanned``: the display frames from the first coded frame to the last (by their timestamps). A stream
    that codes fewer frames than it displays (``tree.avi``: 68 coded frames, each shown about 6.5 times,
    444 declared) is complete when its coded frames span the declared ones; a truncated file is not.
    """
    if found == 0:
        raise DataError(f"{path}: no frame could be read")
    if declared and max(found, spanned or 0) < declared:
        raise DataError(f"{path}: truncated: {found} of the {declared} frames it declares could be read")


def _spanned(stream, first_pts: int | None, last_pts: int | None) -> int | None:
    """Display frames from timestamp ``first_pts`` to ``last_pts`` at the stream's average rate (None: unknown)."""
    if first_pts is None or last_pts is None or not stream.average_rate or not stream.time_base:
        return None
    return round((last_pts - first_pts) * stream.time_base * stream.average_rate) + 1


def read_video(path: Path, stride: int = 1) -> Iterator[np.ndarray]:
    """Every ``stride``-th frame of a video, RGB ``[H, W, 3]`` uint8; a damaged file is a DataError."""
    import av

    with _opened(path) as (container, stream):
        declared, decoded, first, last = stream.frames, 0, None, None
        try:
            for frame in container.decode(stream):
                if decoded % stride == 0:
                    yield frame.to_ndarray(format="rgb24")
                decoded += 1
                first, last = (frame.pts if first is None else first), frame.pts
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: decoding failed after {decoded} frames ({' '.join(str(exc).split())})") from None
        spanned = _spanned(stream, first, last)
    _check_count(path, decoded, declared, spanned)


def video_length(path: Path) -> int:
    """The number of coded frames of a video, counted from its packets (no decoding); a truncated file is a
    DataError."""
    import av

    with _opened(path) as (container, stream):
        try:
            stamps = [packet.pts for packet in container.demux(stream) if packet.size]
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: not a readable video ({' '.join(str(exc).split())})") from None
        declared = stream.frames
        timed = [pts for pts in stamps if pts is not None]
        spanned = _spanned(stream, min(timed), max(timed)) if timed else None
    _check_count(path, len(stamps), declared, spanned)
    return len(stamps)


def frame_number(path: Path) -> int:
    """The last number in a frame file's name: ``S1_Walk.54138969_000036.jpg`` -> 36."""
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise DataError(f"{path}: a frame file name must contain its frame number")
    return int(numbers[-1])


def frame_files(folder: Path, prefix: str = "") -> list[Path]:
    """The image files of one sequence in ``folder`` (names starting with ``prefix``), by frame number."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name.startswith(prefix)]
    return sorted(files, key=frame_number)


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({' '.join(str(exc).split())})") from None


def read_frames(files: list[Path]) -> Iterator[np.ndarray]:
    """The images ``files`` in order, RGB ``[H, W, 3]`` uint8; sizes must agree within the sequence."""
    shape = None
    for path in files:
        frame = read_image(path)
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise DataError(f"{path}: frame of {frame.shape[1]}x{frame.shape[0]} in a sequence of "
                            f"{shape[1]}x{shape[0]} frames ({files[0].name} is the first)")
        yield frame


def fit_frame(frame: np.ndarray, height: int, width: int, fit: str) -> np.ndarray:
    """``[h, w, 3]`` -> ``[height, width, 3]`` uint8: resize (stretch), crop (centre crop to the aspect, then
    resize) or pad (zeros around the frame to the aspect, then resize); a frame of the right size is kept."""
    h, w = frame.shape[:2]
    if (h, w) != (height, width) and fit != "resize":
        target = width / height
        if fit == "crop":
            if w / h > target:
                keep = round(h * target)
                frame = frame[:, (w - keep) // 2:(w - keep) // 2 + keep]
            else:
                keep = round(w / target)
                frame = frame[(h - keep) // 2:(h - keep) // 2 + keep]
        else:
            padded_h, padded_w = max(h, round(w / target)), max(w, round(h * target))
            canvas = np.zeros((padded_h, padded_w, 3), np.uint8)
            top, left = (padded_h - h) // 2, (padded_w - w) // 2
            canvas[top:top + h, left:left + w] = frame
            frame = canvas
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.LANCZOS))


def to_channels(frame: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W, 3]`` RGB -> ``[C, H, W]``: as is for C = 3, Pillow's ITU-R 601 luma for C = 1."""
    if channels == 1:
        return np.asarray(Image.fromarray(frame).convert("L"))[None]
    return frame.transpose(2, 0, 1)
