"""``vpbench show``: one stored run as text, metrics in the tables' units (PSNR in dB, LPIPS x 10^-2)."""

from __future__ import annotations

import json
from typing import Any

from vpbench.report.tables import FORMATS

FIELDS = ("run_id", "status", "error", "model", "dataset", "scale", "seed", "run_dir", "wall_s", "created_at",
          "updated_at")


def format_record(record: dict[str, Any]) -> str:
    metrics = record.get("metrics") or {}
    lines = [f"{key:>10}: {record.get(key)}" for key in FIELDS]
    for name in ("psnr", "ssim", "lpips"):
        if name in metrics:
            fmt = FORMATS[name]
            steps = " ".join(f"{v * fmt.scale:.{fmt.digits}f}" for v in metrics[name]["per_step"])
            unit = f" ({fmt.unit})" if fmt.unit else ""
            lines.append(f"{name:>10}: mean {metrics[name]['mean'] * fmt.scale:.{fmt.digits}f}; per step {steps}{unit}")
    lines += [f"{key:>10}: {json.dumps(metrics[key])}" for key in ("lpips_source", "lpips_unavailable", "training")
              if key in metrics]
    lines.append(f"{'profile':>10}: {json.dumps(record.get('profile'))}")
    lines.append(f"{'manifest':>10}: {json.dumps(record.get('manifest'))}")
    lines.append("    config:")
    lines.append("      " + json.dumps(record.get("config"), indent=2, ensure_ascii=False).replace("\n", "\n      "))
    return "\n".join(lines)
