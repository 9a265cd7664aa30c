"""The campaign's progress from its committed exports: per suite and row, which seeds are done, where
each stopped, how many converged by the plateau rule, the test PSNR and the time they took.

    .venv/bin/python leaderboards/campaign_status.py                 # every suite in campaign/
    .venv/bin/python leaderboards/campaign_status.py --suite ablation

Reads ``leaderboards/campaign/<suite>/runs.csv`` (a suite in progress) or, once it is complete,
``leaderboards/<suite>/runs.csv``; prints Markdown (the status table of ``campaign.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SUITES = ("ablation", "convergence_check", "leaderboard", "losses")
EXPECTED = {"ablation": 50, "convergence_check": 4, "leaderboard": 72, "losses": 40}  # runs per suite at small
NO_RULE = {"convergence_check"}  # its runs train twice the budget with the stop removed, on purpose


def export_of(suite: str) -> Path | None:
    """The campaign export of ``suite``: in progress, or complete under the new protocol (with ``converged``)."""
    for folder in (HERE / "campaign" / suite, HERE / suite):
        path = folder / "runs.csv"
        if path.is_file() and "converged" in pd.read_csv(path, nrows=0).columns:
            return path
    return None


def _span(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    low, high = values.min(), values.max()
    return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}-{high:.{digits}f}"


def learned_runs(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The complete runs of an export, and those of them that trained (not copy-last)."""
    runs = pd.read_csv(path, dtype={"converged": "string"})
    runs = runs[runs["status"] == "complete"]
    return runs, runs[runs["steps_trained"].fillna(0) > 0]


def converged_count(trained: pd.DataFrame) -> int:
    return int((trained["converged"].str.lower() == "true").sum())


def status(suite: str, path: Path, runs: pd.DataFrame, trained: pd.DataFrame) -> str:
    converged = converged_count(trained)
    seconds = runs["train_s"] if "train_s" in runs else pd.Series(dtype=float)
    lines = [f"### {suite}: {len(runs)} of {EXPECTED.get(suite, '?')} runs complete ({path.relative_to(HERE)})", "",
             f"{converged} of {len(trained)} learned runs converged by the rule; {runs['wall_s'].sum():.0f} s of "
             "worker time (`wall_s`: a resumed run's counts its last process only)"
             + (f"; {seconds.sum():.0f} s of training summed over processes (`train_s`, where recorded)"
                if seconds.notna().any() else ""), "",
             "| row | data set | seeds done | stopped at step | converged | test PSNR, mean over the horizon (dB) "
             "| wall s per run |", "|---|---|---|---|---|---|---|"]
    for (label, dataset), rows in runs.groupby(["label", "dataset"], sort=False):
        rows = rows.sort_values("seed")
        learned = rows["steps_trained"].fillna(0) > 0
        steps = " / ".join(str(int(s)) for s in rows.loc[learned, "steps_trained"]) or "-"
        done = int((rows.loc[learned, "converged"].str.lower() == "true").sum())
        lines.append(f"| {label} | {dataset} | {', '.join(map(str, rows['seed']))} | {steps} | "
                     f"{f'{done} of {int(learned.sum())}' if learned.any() else '-'} | {_span(rows['psnr_mean'], 3)} | "
                     f"{_span(rows['wall_s'], 0)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=SUITES, help="one suite (default: all)")
    args = parser.parse_args()
    done, learned, counted = 0, 0, []
    for suite in args.suite or SUITES:
        path = export_of(suite)
        if path is None:
            print(f"### {suite}: not started (no export)", end="\n\n")
            continue
        runs, trained = learned_runs(path)
        print(status(suite, path, runs, trained), end="\n\n")
        if suite not in NO_RULE:
            done, learned = done + converged_count(trained), learned + len(trained)
            counted.append(suite)
    if learned:
        print(f"Over {', '.join(counted)} (the suites stopped by the rule): {done} of {learned} learned runs "
              f"converged ({100 * done / learned:.1f} %; the issue asks for at least 90 %)")


if __name__ == "__main__":
    main()
