"""The paired comparison's error rates by simulation, as a Markdown table (vpbench.report.calibration).

For every regime x seeds x clips: the share of 95% intervals that exclude zero on true nulls (should
be 5 %), the share that contain a true 0.5 dB difference (should be 95 %), and the mean half-width.
``--write`` puts the table into leaderboards/README.md between its calibration markers.

    .venv/bin/python leaderboards/calibrate_stats.py --trials 4000 --write
"""

import argparse
import re
from pathlib import Path

from vpbench.report import calibration

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- calibration: begin -->", "<!-- calibration: end -->"


def markdown(rows: list[dict], trials: int) -> str:
    lines = [f"{trials} simulated comparisons per cell (`leaderboards/calibrate_stats.py --trials {trials}`); "
             f"components as standard deviations of the paired difference, dB.", "",
             "| regime (seed / clip / residual / block sd) | seeds | clips | false positives | coverage of "
             f"+{calibration.EFFECT} dB | mean half-width (dB) |", "|---|---:|---:|---:|---:|---:|"]
    regimes = {r.name: r for r in calibration.REGIMES}
    for row in rows:
        r = regimes[row["regime"]]
        name = f"{r.name} ({r.seed} / {r.clip} / {r.residual}" + (f" / {r.block})" if r.block else ")")
        lines.append(f"| {name} | {row['seeds']} | {row['clips']} | {row['false_positive']:.1%} | "
                     f"{row['coverage']:.1%} | {row['mean_half_width']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4000, help="simulated comparisons per cell (default 4000)")
    parser.add_argument("--write", action="store_true", help=f"replace the table in {README}")
    args = parser.parse_args()
    text = markdown(calibration.table(args.trials), args.trials)
    print(text)
    if args.write:
        readme = README.read_text()
        if BEGIN not in readme:
            raise SystemExit(f"{README}: no '{BEGIN}' marker to write the table under")
        block = f"{BEGIN}\n{text}\n{END}"
        README.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S))


if __name__ == "__main__":
    main()
