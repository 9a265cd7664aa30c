"""Tables from store records: one value matrix, three writers, N/A for what is missing."""

import pandas as pd

from vpbench.report.records import flatten
from vpbench.report.tables import runs_table, to_csv, to_latex, to_markdown


def _record(label, lpips=True):
    metrics = {"steps": [1, 2], "test_clips": 2,
               "psnr": {"per_step": [20.0, 18.0], "mean": 19.0, "per_clip": [[20, 18], [20, 18]]},
               "ssim": {"per_step": [0.8, 0.7], "mean": 0.75, "per_clip": [[0.8, 0.7], [0.8, 0.7]]}}
    if lpips:
        metrics["lpips"] = {"per_step": [0.1, 0.2], "mean": 0.15, "per_clip": [[0.1, 0.2], [0.1, 0.2]]}
    else:
        metrics["lpips_unavailable"] = "no weights"
    config = {"data": {"context": 4, "horizon": 2, "height": 16, "width": 16}, "sources": {"model": label},
              "train": {"loss": "mse"}, "task": "train"}
    record = {"run_id": f"{label:0>16}", "status": "complete", "model": label, "dataset": "moving_objects",
              "scale": "smoke", "seed": 0, "label": label, "metrics": metrics, "config": config}
    return flatten(record, "test", 1, 0)


def test_writers_share_one_matrix():
    table = runs_table(pd.DataFrame([_record("convlstm"), _record("copy_last", lpips=False)]))
    assert [row["label"] for row in table.rows] == ["convlstm", "copy_last"]
    markdown = to_markdown(table)
    assert "| convlstm | convlstm | moving_objects | smoke | 0 |" in markdown
    assert "PSNR↑ t=5 (dB)" in markdown and "LPIPS↓ mean (×10⁻²)" in markdown
    assert "| 20.00 | 18.00 | 19.00 | 0.8000 | 0.7000 | 0.7500 | 10.00 | 20.00 | 15.00 |" in markdown
    assert "N/A | N/A | N/A |" in markdown and "LPIPS unavailable: no weights" in markdown
    latex = to_latex(table)
    assert r"\toprule" in latex and r"PSNR$\uparrow$ t=5" in latex and r"copy\_last" in latex
    blocks = latex.count(r"\begin{tabular}")  # 21 columns: wider than a two-column page, so stacked tabulars
    assert blocks > 1 and latex.count(r"\\") == 4 * blocks  # each: the header, its units and two rows
    assert sum(line.startswith("copy\\_last &") for line in latex.splitlines()) == blocks  # labels in every block
    assert r"shown $\times 10^{-2}$" in latex and "$20.00$ & $18.00$" in latex  # numbers in math mode
    assert latex.startswith(r"\begin{table*}")
    csv = to_csv(table).splitlines()
    assert csv[0].startswith("label,model,dataset,scale,seed,run_id,psnr@1,psnr@2,psnr_mean")
    assert csv[1].split(",")[6:9] == ["20.0", "18.0", "19.0"]
    assert csv[2].endswith(",,,")  # missing LPIPS stays empty in CSV, never 0
