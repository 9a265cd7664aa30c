"""A profile as text for the terminal (``vpbench profile``)."""

from __future__ import annotations

from typing import Any


def _g(n: float) -> str:
    return f"{n / 1e9:.3f} G"


def format_profile(label: str, profile: dict[str, Any]) -> str:
    g = profile["geometry"]
    lines = [f"{label} at {g['height']}x{g['width']} (p {g['patch']}, sr {g['stride_ratio']}, "
             f"{g['context']} -> {g['horizon']} frames), device {profile['device']}, {profile['precision']}"]
    p = profile["parameters"]
    lines.append(f"parameters: {p['params'] / 1e6:.2f} M; without norm layers {p['params_without_norm'] / 1e6:.2f} M "
                 f"= {p['params_without_norm'] / 2**20:.2f} Mi")
    torch_count = profile["flops"].get("torch")
    if torch_count:
        lines.append(f"MACs (torch.utils.flop_counter, batch 1, {torch_count['steps']} recurrent steps): "
                     f"per sample {_g(torch_count['macs_per_sample'])} ({torch_count['macs_per_sample'] / 2**30:.2f} Gi); "
                     f"per step mean {_g(torch_count['macs_per_step_mean'])} "
                     f"({torch_count['macs_per_step_mean'] / 2**30:.2f} Gi)")
        lines.append("  per step: " + ", ".join(_g(m) for m in torch_count["macs_per_step"]))
        lines.append(f"FLOPs = 2 x MACs: per sample {_g(torch_count['flops_per_sample'])}; "
                     f"elementwise FLOPs not in MACs: {_g(torch_count['elementwise_flops_per_sample'])}")
        if torch_count["macs_by_part"]:
            parts = torch_count["macs_by_part"]
            lines.append(f"  codec {_g(parts['codec'])}, memory {_g(parts['memory'])} MACs per sample")
        skipped = torch_count["skipped_ops"]
        lines.append("  ops with no formula: " + (", ".join(f"{k} x{v}" for k, v in skipped.items()) or "none"))
    fv = profile["flops"].get("fvcore")
    if fv:
        if "error" in fv:
            lines.append(f"fvcore: {fv['error']}")
        else:
            lines.append(f"fvcore MACs per sample {_g(fv['macs_per_sample'])} (conv {_g(fv['conv_macs_per_sample'])}); "
                         f"skipped: {', '.join(fv['skipped_ops']) or 'none'}")
    for key, latency in (profile.get("latency") or {}).items():
        if "error" in latency:
            lines.append(f"latency {key} (batch {latency['batch']}): {latency['error']}")
            continue
        lines.append(f"latency {key} (batch {latency['batch']}): median {latency['median_ms']:.1f} ms, "
                     f"IQR {latency['iqr_ms']:.1f} ms over {len(latency['samples_ms'])} samples after "
                     f"{latency['warmup']} warm-up; {len(latency['samples_ms'])} samples took {latency['total_s']:.2f} s; "
                     f"peak memory {latency['peak_memory_mb']:.0f} MiB ({latency['peak_memory']})")
    return "\n".join(lines)
