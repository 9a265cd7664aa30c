#!/usr/bin/env bash
# Produces every result in leaderboards/: the four suites at the stated scales, then exports them
# and renders the tables and plots (regenerate.sh). Run from the repository root with the venv of
# the README. Two worker processes share each suite (a run locked by one is skipped by the other),
# one thread each, so the two CPU cores both work.
set -euo pipefail
STORE=${STORE:-runs/leaderboards.sqlite}
VPBENCH=${VPBENCH:-.venv/bin/vpbench}

run() {
    OMP_NUM_THREADS=1 "$VPBENCH" run "$@" --store "$STORE" --no-progress &
    OMP_NUM_THREADS=1 "$VPBENCH" run "$@" --store "$STORE" --no-progress &
    wait
}

time run --suite ablation --scale small
time run --suite losses --scale small
time run --suite leaderboard --scale small
time run --suite profile --scale paper
"$VPBENCH" run --suite smoke --scale smoke --store runs/leaderboards-smoke.sqlite --no-progress

for suite in ablation losses leaderboard profile; do
    "$VPBENCH" export --suite "$suite" --store "$STORE" --out "leaderboards/$suite"
done
"$VPBENCH" export --suite smoke --store runs/leaderboards-smoke.sqlite --out leaderboards/smoke
bash leaderboards/regenerate.sh
