"""Several models' predictions of the same test clip in one labelled picture.

Every run writes ``samples/test<NNN>.png`` when it is evaluated (:func:`vpbench.run.evaluate.write_sample`):
a top row of context | ground-truth frames and a bottom row of blanks | predicted frames, frames
separated by 4 white pixels. :func:`compose` keeps the top row once, stacks each run's prediction row
under it, writes each row's name on the left and the frame index t above each column: context
frames t = −(T_in − 1) … 0, predictions t = 1 … T (so t = 1 here is the frame the tables, which count
from the first context frame, call t = T_in + 1).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vpbench.errors import VpbenchError
from vpbench.picture_labels import frame_label, label_font
from vpbench.report.suite_record import SuiteRecord

GAP = 4  # white pixels between frames and between the two rows of a run's sample image
MARGIN = 180  # the least room for the row labels on the left; a longer label widens it
HEADER = 22  # room for the frame indices on top


def sample_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The two rows of one run's sample image: ``(context | truth, blanks | prediction)``, each ``[h, W, 3]``."""
    try:
        image = np.asarray(Image.open(path).convert("RGB"))
    except OSError as exc:
        raise VpbenchError(f"{path}: not a readable sample image ({exc})") from None
    height = (image.shape[0] - GAP) // 2
    if height <= 0 or 2 * height + GAP != image.shape[0]:
        raise VpbenchError(f"{path}: expected two rows of frames {GAP} px apart, got height {image.shape[0]}")
    return image[:height], image[height + GAP:]


def frame_index(column: int, context: int) -> str:
    """The label over column ``column`` (0-based): t = 1 … T_in for context, T_in + 1 … for predictions, the
    frame index the tables use. ``context`` marks where predictions start (a ``|`` before the first)."""
    t = column + 1
    return frame_label(t) if t != context + 1 else "| " + frame_label(t)


def frame_ranges(context: int, horizon: int) -> str:
    """Which indices are context and which predicted, as the column headers number them."""
    return f"t = 1..{context} context, t = {context + 1}..{context + horizon} predicted"


def compose(rows: list[tuple[str, Path]], context: int, horizon: int, title: str) -> Image.Image:
    """One picture from ``(label, sample image)`` pairs of the same clip: ground truth on top, then each
    label's prediction row, a frame index over each column (:func:`frame_index`). A row holds
    ``context + horizon`` frames."""
    frames = context + horizon
    if not rows:
        raise VpbenchError("no sample images to compose")
    truth, _ = sample_rows(rows[0][1])
    height, width = truth.shape[:2]
    side = (width - GAP * (frames - 1)) // frames
    if side <= 0 or side * frames + GAP * (frames - 1) != width:
        raise VpbenchError(f"{rows[0][1]}: a row {width} px wide does not hold {frames} frames")
    named = [("context | ground truth", truth)]
    for label, path in rows:
        top, bottom = sample_rows(path)
        if top.shape != truth.shape or not np.array_equal(top, truth):
            raise VpbenchError(f"{path}: not the same clip as {rows[0][1]} (its ground truth differs)")
        named.append((label, bottom))
    font = label_font(13)
    margin = max(MARGIN, 16 + math.ceil(max(font.getlength(label) for label, _ in named)))
    canvas = Image.new("RGB", (margin + width, HEADER * 2 + len(named) * (height + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black", font=font)
    for index in range(frames):
        x = margin + index * (side + GAP) + side // 2
        draw.text((x, HEADER + 2), frame_index(index, context), fill="black", font=font, anchor="mt")
    for row, (label, pixels) in enumerate(named):
        y = HEADER * 2 + row * (height + GAP)
        canvas.paste(Image.fromarray(pixels), (margin, y))
        draw.text((margin - 8, y + height // 2), label, fill="black", font=font, anchor="rm")
    return canvas


def datasets_with_samples(records: list[dict], suite: SuiteRecord) -> list[str]:
    """The suite's data sets, in its order, on which it has complete runs (``records``: its store records)."""
    return [d for d in suite.datasets if any(r["dataset"] == d for r in records)]


def suite_strip(records: list[dict], suite: SuiteRecord, dataset: str | None, clip: int) -> Image.Image:
    """Test clip ``clip`` as the suite's rows predicted it on ``dataset`` (default: the first with results),
    one row per label in suite order, each from its lowest seed's run (``records``: the suite's complete runs)."""
    datasets = datasets_with_samples(records, suite)
    dataset = dataset or (datasets[0] if datasets else None)
    if dataset not in datasets:
        raise VpbenchError(f"--dataset {dataset!r}: suite {suite.name} has no complete runs on it "
                           f"(with results: {', '.join(datasets) or 'none'})")
    rows, seeds, scales = [], set(), set()
    for entry in suite.models:
        runs = sorted((r for r in records if r["dataset"] == dataset and r.get("label") == entry.label),
                      key=lambda r: r["seed"])
        if not runs:
            continue
        path = Path(runs[0]["run_dir"]) / "samples" / f"test{clip:03d}.png"
        if not path.is_file():
            raise VpbenchError(f"--clip {clip}: {path} does not exist (each run writes eval.samples clips)")
        rows.append((entry.label, path))
        seeds.add(runs[0]["seed"])
        scales.add(runs[0]["scale"])
    data = next(r for r in records if r["dataset"] == dataset)["config"]["data"]
    title = (f"{suite.name} ({', '.join(sorted(scales))}): {dataset}, test clip {clip}, seed "
             f"{', '.join(map(str, sorted(seeds)))}; {frame_ranges(data['context'], data['horizon'])}")
    return compose(rows, data["context"], data["horizon"], title)
