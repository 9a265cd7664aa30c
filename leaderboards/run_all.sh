#!/usr/bin/env bash
# The regeneration campaign (leaderboards/campaign.md): the trained suites at the small scale, one after
# another, each with two one-thread workers on one store, exported into leaderboards/<suite>/ as soon as
# it completes (commit it then). Resumable at any point, on a fresh machine too: a fresh store first takes
# back every run the committed exports hold (`vpbench import`), and complete runs are skipped, not
# retrained. While a suite runs, `bash leaderboards/run_all.sh progress` exports what has completed into
# leaderboards/campaign/<suite>/ (commit that too: an interrupted suite resumes from it).
# Run from the repository root with the venv of the README.
#   SUITES="ablation" bash leaderboards/run_all.sh      # one suite
set -euo pipefail
STORE=${STORE:-runs/leaderboards.sqlite}
VPBENCH=${VPBENCH:-.venv/bin/vpbench}
read -r -a SUITES <<< "${SUITES:-ablation convergence_check leaderboard losses}"

DONE=leaderboards/campaign/completed  # the suites whose final export is in leaderboards/<suite>/, one per line
if [ "${1:-}" = progress ]; then
    for suite in "${SUITES[@]}"; do
        if grep -qx "$suite" "$DONE" 2>/dev/null; then continue; fi
        "$VPBENCH" export --suite "$suite" --store "$STORE" --out "leaderboards/campaign/$suite" 2>/dev/null || true
        # a suite with no complete run yet leaves no export behind
        if [ -f "leaderboards/campaign/$suite/runs.csv" ] && [ "$(wc -l < "leaderboards/campaign/$suite/runs.csv")" -le 1 ]; then
            rm -rf "leaderboards/campaign/$suite"
        fi
    done
    exit 0
fi

mkdir -p runs
for suite in "${SUITES[@]}"; do  # what earlier sessions completed, from the campaign's own exports only
    for dir in "leaderboards/campaign/$suite" "leaderboards/$suite"; do
        if [ -f "$dir/records.json" ] && grep -q '"metrics"' "$dir/records.json"; then
            "$VPBENCH" import "$dir" --store "$STORE"
        fi
    done
done
for suite in "${SUITES[@]}"; do
    started=$(date +%s)
    "$VPBENCH" run --suite "$suite" --scale small --store "$STORE" --workers 2 \
        > "runs/campaign-$suite.log" 2>&1 || echo "$suite: some runs failed (runs/campaign-$suite.log); the rest are exported"
    echo "$suite: $(( $(date +%s) - started )) s of wall time (two workers); log in runs/campaign-$suite.log"
    "$VPBENCH" export --suite "$suite" --store "$STORE" --out "leaderboards/$suite"
    datasets=$(.venv/bin/python -c 'import json, sys; print(*json.load(open(sys.argv[1]))["datasets"])' \
        "leaderboards/$suite/suite.json")
    for dataset in $datasets; do  # every row's prediction of test clip 0, seed 0, under the ground truth
        "$VPBENCH" samples --suite "$suite" --dataset "$dataset" --store "$STORE" \
            --out "leaderboards/$suite/samples_$dataset.png" || echo "$suite: no strip for $dataset"
    done
    rm -rf "leaderboards/campaign/$suite"
    grep -qx "$suite" "$DONE" 2>/dev/null || echo "$suite" >> "$DONE"
done
