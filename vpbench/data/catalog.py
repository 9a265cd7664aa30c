"""``vpbench data``: prepare, list, describe and verify the data sets of real footage under ``$VPBENCH_DATA/prepared``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpbench.data.storage import MANIFEST, data_root, prepared_path, verify
from vpbench.errors import VpbenchError


def prepare(source: Path, layout: str, name: str, progress: bool = True, **options: Any) -> str:
    """Decode ``source`` into the data set ``name``; the line that says where it is and what it holds.

    ``options``: ``size``, ``stride``, ``clip_length``, ``splits``, ``fit``, ``divisible_by``
    (:func:`vpbench.data.footage.prepare_folder`).
    """
    from vpbench.data.footage import prepare_folder

    path = prepare_folder(source, layout, name, options.get("size"), options.get("stride"),
                          options.get("clip_length"), options.get("splits"), options.get("fit"),
                          options.get("divisible_by"), progress=progress)
    clips = json.loads((path / MANIFEST).read_text())["clips"]
    return f"{name}: {path} ({', '.join(f'{n} {split}' for split, n in clips.items())} clips)"


def listing() -> list[str]:
    """One line per prepared data set: layout, size, clip length and clips per split."""
    folder = data_root() / "prepared"
    lines = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if (path / MANIFEST).is_file():
            manifest = json.loads((path / MANIFEST).read_text())
            clips = ", ".join(f"{n} {split}" for split, n in manifest.get("clips", {}).items())
            size = "x".join(map(str, manifest.get("size", [])))
            lines.append(f"{path.name}: {manifest.get('layout')} {size}, {manifest.get('clip_length')} frames, {clips}")
    return lines


def _prepared(name: str) -> Path:
    path = prepared_path(name)
    if not (path / MANIFEST).is_file():
        raise VpbenchError(f"no prepared data set {name!r} at {path} (`vpbench data list` shows them)")
    return path


def info(name: str) -> list[str]:
    """The manifest of ``name``, its per-file lists summarised."""
    path = _prepared(name)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["sources"] = f"{len(manifest.get('sources', {}))} files (sizes and sha256 in {path / MANIFEST})"
    manifest["files"] = f"{len(manifest.get('files', {}))} files (sizes and sha256 in {path / MANIFEST})"
    manifest["sequences"] = {k: len(v) for k, v in manifest.get("sequences", {}).items()}
    return [f"{key:>28}: {value}" for key, value in manifest.items()]


def check(name: str) -> str:
    """Every file of ``name`` hashed against its manifest; a mismatch is a VpbenchError naming it."""
    path = _prepared(name)
    problem = verify(path, full=True)
    if problem is not None:
        raise VpbenchError(f"data set {name!r}: {problem}")
    return f"{name}: every file matches its sha256 in {path / MANIFEST}"
