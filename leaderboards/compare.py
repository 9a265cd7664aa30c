"""Rows of an exported suite against a reference row, per data set: the closing note's numbers.

For PSNR, SSIM and LPIPS at the first predicted frame and over the horizon, the paired difference
(row - reference) on the shared seeds and test clips ± the half-width of its 95% variance-components
t interval, the same statistic the tables print (``*``: the interval excludes zero; the clips of one video
segment averaged first, as blocks), and where each seed stopped.
Every row is compared against one reference label, or, with ``--pair``, chosen rows against chosen
references.

    .venv/bin/python leaderboards/compare.py leaderboards/leaderboard copy-last
    .venv/bin/python leaderboards/compare.py leaderboards/previous_protocol/residual_speed \\
        --pair "RPM w/o residual, 0.54 px=RPM, 0.54 px" --pair "RPM, 0.54 px=copy-last, 0.54 px"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.report.layouts import compare_rows, stopped_at
from vpbench.report.records import from_csv

METRICS = (("psnr", 1.0, 2), ("ssim", 1.0, 3), ("lpips", 100.0, 2))  # name, display scale, digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder written by `vpbench export`")
    parser.add_argument("reference", nargs="?", default="copy-last",
                        help="the reference row's label for every other row (default copy-last)")
    parser.add_argument("--pair", action="append", default=[], metavar="ROW=REFERENCE",
                        help="compare only ROW against REFERENCE (labels; repeatable)")
    args = parser.parse_args()
    runs, clips = from_csv(args.folder)
    for dataset, subset in runs.groupby("dataset", sort=False):
        labels = list(dict.fromkeys(subset["label"]))
        pairs = [split_pair(p, labels) for p in args.pair] or [(label, args.reference) for label in labels
                                                                if label != args.reference]
        for row, reference in pairs:
            if row not in labels or reference not in labels:
                raise SystemExit(f"{args.folder}: {dataset}: no row labelled {row if row not in labels else reference!r} "
                                 f"(labels: {', '.join(labels)})")
        print(f"## {dataset} (LPIPS x 10^-2)")
        first = f"t={int(subset['context'].iloc[0]) + 1}"  # the first predicted frame, indexed as the tables do
        print("| row | vs | " + " | ".join(f"Δ{m.upper()} {w}" for w in (first, "mean") for m, _, _ in METRICS)
              + " | stopped |")
        for row, reference in pairs:
            group, base = subset[subset["label"] == row], subset[subset["label"] == reference]
            cells = []
            for suffix in ("@1", ""):
                for metric, scale, digits in METRICS:
                    c = compare_rows(group, base, clips, metric + suffix)
                    cells.append("N/A" if c is None else
                                 f"{c.difference * scale:+.{digits}f} ± {c.half_width * scale:.{digits}f}"
                                 f"{'*' if c.significant else ''}")
            print(f"| {row} | {reference} | " + " | ".join(cells) + f" | {stopped_at(group) or '-'} |")


def split_pair(text: str, labels: list[str]) -> tuple[str, str]:
    """``ROW=REFERENCE`` split at the ``=`` whose two sides are both labels (labels such as
    ``RPM (θ=5, τ=1)`` hold an ``=`` of their own); else at the first one."""
    cuts = [i for i, char in enumerate(text) if char == "="]
    for i in cuts:
        if text[:i] in labels and text[i + 1:] in labels:
            return text[:i], text[i + 1:]
    return tuple(text.split("=", 1)) if cuts else (text, "")


if __name__ == "__main__":
    main()
