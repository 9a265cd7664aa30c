#!/usr/bin/env bash
# Renders every table and plot in leaderboards/ from the committed CSV (no store, no training), then the
# static site over them (leaderboards/site/index.html; it links the PNGs here, it does not copy them).
set -euo pipefail
VPBENCH=${VPBENCH:-.venv/bin/vpbench}
for dir in leaderboards/{ablation,convergence_check,losses,leaderboard,profile,smoke} \
           leaderboards/previous_protocol/{losses,residual_speed,convlstm_budget}; do
    suite=$(basename "$dir")
    [ -f "$dir/runs.csv" ] || continue
    "$VPBENCH" table --suite "$suite" --from "$dir" --paper --format markdown > "$dir/table.md"
    "$VPBENCH" table --suite "$suite" --from "$dir" --paper --format latex > "$dir/table.tex"
    "$VPBENCH" table --suite "$suite" --from "$dir" --paper --format csv > "$dir/table.csv"
    rm -rf "$dir/plots"  # no plot of a data set that has left the suite stays behind
    "$VPBENCH" plot --suite "$suite" --from "$dir" --out "$dir/plots" > /dev/null
done
rm -rf leaderboards/site  # no page of a run that has left the exports stays behind
"$VPBENCH" site --from leaderboards --out leaderboards/site > /dev/null
