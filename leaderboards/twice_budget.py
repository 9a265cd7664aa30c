"""Does the plateau rule's stop mean converged? The issue's check, from the committed exports.

For each run of `convergence_check/` (seed 0 trained to 16,000 steps, twice the budget, with the stop
removed), the same config, data set and seed as stopped by the rule in a suite (the ablation, the
leaderboard, the losses; complete or in progress under `campaign/`): its test PSNR (mean over the
horizon) both ways, the change, and the half-widths of the comparisons the rule's row enters in its
suite (its paired difference with every other row on that data set, as the tables compute it:
`vpbench.report.layouts.compare_rows`, the clips of one video segment averaged first). The rule
means converged where the change is smaller than every one of those half-widths.

Usage: ``.venv/bin/python leaderboards/twice_budget.py`` (prints a Markdown table).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vpbench.report.layouts import compare_rows
from vpbench.report.records import from_csv

HERE = Path(__file__).resolve().parent
SUITES = ("ablation", "leaderboard", "losses")


def rule_exports() -> list[tuple[str, Path]]:
    """``(suite, folder)`` of each new-protocol export (with a ``converged`` column), final or in progress."""
    found = []
    for suite in SUITES:
        for folder in (HERE / suite, HERE / "campaign" / suite):
            path = folder / "runs.csv"
            if path.is_file() and "converged" in pd.read_csv(path, nrows=0).columns:
                found.append((suite, folder))
                break
    return found


def main() -> None:
    check, _ = from_csv(HERE / "convergence_check")
    exports = [(suite, folder, *from_csv(folder)) for suite, folder in rule_exports()]
    print("| config | data set | suite (row) | rule: stopped at / selected | PSNR (dB) | 16k, no stop: selected | "
          "PSNR (dB) | change (dB) | half-widths of its comparisons (dB) | change below all |")
    print("|---|---|---|---|---:|---|---:|---:|---|---|")
    for long in check.itertuples():
        match = None
        for suite, folder, runs, clips in exports:
            same = runs[(runs.config == long.config) & (runs.dataset == long.dataset) & (runs.seed == 0)
                        & (runs.max_steps == 8000) & (runs.status == "complete")]
            if not same.empty:
                match = suite, runs, clips, same.iloc[0]
                break
        if match is None:
            print(f"| {long.config} | {long.dataset} | pending (no rule-stopped seed 0 exported yet) | | | "
                  f"{int(long.selected_step)} | {long.psnr_mean:.3f} | | | |")
            continue
        suite, runs, clips, rule = match
        on_data = runs[(runs.dataset == long.dataset) & (runs.status == "complete")]
        mine = on_data[on_data.label == rule.label]
        halves = []
        for label, other in on_data[on_data.label != rule.label].groupby("label", sort=False):
            comparison = compare_rows(mine, other, clips, "psnr")
            if comparison is not None:
                halves.append(comparison.half_width)
        change = long.psnr_mean - rule.psnr_mean
        span = f"{min(halves):.3f}-{max(halves):.3f} ({len(halves)} rows)" if halves else "none yet"
        below = ("yes" if abs(change) < min(halves) else "no") if halves else "-"
        print(f"| {long.config} | {long.dataset} | {suite} ({rule.label}) | {int(rule.steps_trained)} / "
              f"{int(rule.selected_step)} | {rule.psnr_mean:.3f} | {int(long.selected_step)} | {long.psnr_mean:.3f} | "
              f"{change:+.3f} | {span} | {below} |")


if __name__ == "__main__":
    main()
