#!/usr/bin/env bash
# Produces the trained results in leaderboards/: the leaderboard, ablation and losses suites at the
# small scale, then exports them, renders the tables and plots (regenerate.sh), draws the sample
# strips and runs the two diagnostics the README cites. Run from the
# repository root with the venv of the README. Two worker processes, one thread each, go through the
# three suites in the same order; a run one worker holds (a lock on its folder) is skipped by the
# other, which moves on, so neither waits for the other between suites. Each worker's log is kept
# in runs/leaderboards-worker-<N>.log. The profile suite (paper scale, no training) is run apart:
#   vpbench run --suite profile --scale paper --store runs/leaderboards.sqlite
set -euo pipefail
STORE=${STORE:-runs/leaderboards.sqlite}
VPBENCH=${VPBENCH:-.venv/bin/vpbench}
SUITES=(leaderboard ablation losses)

worker() {
    for suite in "${SUITES[@]}"; do
        OMP_NUM_THREADS=1 "$VPBENCH" run --suite "$suite" --scale small --store "$STORE" --no-progress
    done
}

mkdir -p runs
started=$(date +%s)
worker > runs/leaderboards-worker-1.log 2>&1 &
worker > runs/leaderboards-worker-2.log 2>&1 &
wait
echo "trained suites: $(( $(date +%s) - started )) s of wall time"
# a run busy in the other worker was skipped by this one; one more pass records every run in every suite
for suite in "${SUITES[@]}"; do
    "$VPBENCH" run --suite "$suite" --scale small --store "$STORE" --no-progress | tail -1
done
rm -f runs/leaderboards-smoke.sqlite  # the smoke suite is seconds: a fresh store holds only its current runs
"$VPBENCH" run --suite smoke --scale smoke --store runs/leaderboards-smoke.sqlite --no-progress

for suite in "${SUITES[@]}"; do
    "$VPBENCH" export --suite "$suite" --store "$STORE" --out "leaderboards/$suite"
done
"$VPBENCH" export --suite smoke --store runs/leaderboards-smoke.sqlite --out leaderboards/smoke
# the two diagnostic suites the README cites, one worker each (the residual's speed dependence shares
# the ablation's runs at the protocol's speed; the ConvLSTM budget study takes about an hour)
OMP_NUM_THREADS=1 "$VPBENCH" run --suite residual_speed --scale small --store "$STORE" --no-progress > runs/leaderboards-residual.log 2>&1 &
OMP_NUM_THREADS=1 "$VPBENCH" run --suite convlstm_budget --scale small --store "$STORE" --no-progress > runs/leaderboards-budget.log 2>&1 &
wait
for suite in residual_speed convlstm_budget; do
    "$VPBENCH" export --suite "$suite" --store "$STORE" --out "leaderboards/$suite"
done
bash leaderboards/regenerate.sh
# sample strips (they read the run folders, so regenerate.sh cannot redo them from the CSV)
for dataset in moving_digits vtest; do
    "$VPBENCH" samples --suite leaderboard --dataset "$dataset" --store "$STORE" --out "leaderboards/leaderboard/samples_$dataset.png"
    "$VPBENCH" samples --suite losses --dataset "$dataset" --store "$STORE" --out "leaderboards/losses/samples_$dataset.png"
done
"$VPBENCH" samples --suite ablation --dataset moving_digits --store "$STORE" --out leaderboards/ablation/samples_moving_digits.png
for clip in 0 1; do
    "$VPBENCH" samples --suite convlstm_budget --clip "$clip" --store "$STORE" --out "leaderboards/convlstm_budget/samples_moving_digits_$clip.png"
done
# the diagnostics the README cites (one thread each, one after the other)
OMP_NUM_THREADS=1 .venv/bin/python leaderboards/memorise_digits.py --out leaderboards/leaderboard/memorised_moving_digits.png
for dataset in moving_digits vtest; do
    OMP_NUM_THREADS=1 .venv/bin/python leaderboards/codec_ceiling.py --dataset "$dataset"
done
