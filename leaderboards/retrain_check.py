"""Does a committed run come out the same when it is trained again? The committed export against a retrain.

`retrain/<suite>/` is an export of runs trained again, with the same run ids (the same resolved config and
seed), in a scratch store on a later machine and commit. For each run in both: where training stopped,
the step it selected and the test PSNR (mean over the horizon), both ways, and the change. The plateau
rule's stop is a discrete decision, so a tiny numerical difference can move it by a few validations.

    .venv/bin/python leaderboards/retrain_check.py ablation     # prints a Markdown table

The retrain of the ablation's seed 0 (then `vpbench samples --suite ablation --store /tmp/abl/store.sqlite`
draws `retrain/ablation/samples_moving_digits.png`):

    vpbench run --suite ablation --scale small --seeds 1 --store /tmp/abl/store.sqlite --workers 2  # a fresh store
    vpbench export --suite ablation --store /tmp/abl/store.sqlite --out leaderboards/retrain/ablation
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.report.records import from_csv

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", help="a suite with a committed export and one under retrain/")
    args = parser.parse_args()
    committed, _ = from_csv(HERE / args.suite)
    again, _ = from_csv(HERE / "retrain" / args.suite)
    both = committed.merge(again, on="run_id", suffixes=("", "_again"))
    print("| row | seed | run id | committed: stopped / selected | PSNR (dB) | retrained: stopped / selected | "
          "PSNR (dB) | change (dB) |")
    print("|---|---:|---|---|---:|---|---:|---:|")
    for run in both.itertuples():
        if not run.steps_trained:
            continue  # a row that trains nothing
        print(f"| {run.label} | {run.seed} | {run.run_id} | {run.steps_trained} / {run.selected_step:.0f} | "
              f"{run.psnr_mean:.4f} | {run.steps_trained_again} / {run.selected_step_again:.0f} | "
              f"{run.psnr_mean_again:.4f} | {run.psnr_mean_again - run.psnr_mean:+.4f} |")


if __name__ == "__main__":
    main()
