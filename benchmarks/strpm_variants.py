"""Where STRPM's time and bf16 error go on CUDA: each combination of fast paths, the top kernels, the error per step.

    python benchmarks/strpm_variants.py --out DIR   # CUDA; prints three tables, writes DIR/strpm_variants.json

1. STRPM with the released code's switches at SJTU4K (2176x3840, 4 -> 4), inference at batch 1 and 8,
   eager fp32 against each combination of fuse / channels_last / bf16 / cuda_graph (batch 8: all of
   them only; interleaved,
   median of 5 after 2 warm-ups), with the relative error against fp32 eager.
2. The 15 CUDA kernels that take the most time in one rollout of the fastest variant at batch 1
   (torch.profiler, graphs off so kernels are visible).
3. The relative error of bf16 per predicted step of the benchmark-geometry STRPM (64x64, 10 -> 10):
   whether bf16 error starts large or grows through the recurrence.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import BENCH_SIZES, Case, build, clip_for, time_interleaved  # noqa: E402

from vpbench.run.fast import FastPaths, accelerate  # noqa: E402

VARIANTS = ["bf16", "bf16,cuda_graph", "channels_last,bf16,cuda_graph", "fuse,bf16,cuda_graph",
            "fuse,channels_last,bf16,cuda_graph"]


def variant_rows(device, batch: int, names: list[str]) -> list[dict]:
    plain, geometry = build("strpm_official", "geometry_sjtu4k", "paper", None, device)
    variants = [FastPaths()] + [FastPaths.parse(v) for v in names]
    cases = [Case("infer", accelerate(copy.deepcopy(plain), v), v, geometry, batch, device) for v in variants]
    outputs = [case.output() for case in cases]
    times = time_interleaved(cases, warmup=2, repeats=5)
    rows = []
    for case, output, seconds in zip(cases, outputs, times):
        median = statistics.median(seconds) * 1e3
        error = ((output - outputs[0]).norm() / outputs[0].norm()).item()
        rows.append({"batch": batch, "variant": case.fast.label, "ms": median, "ms_per_sample": median / batch,
                     "speedup": statistics.median(times[0]) * 1e3 / median, "relative_error": error})
    return rows


def top_kernels(device) -> list[dict]:
    plain, geometry = build("strpm_official", "geometry_sjtu4k", "paper", None, device)
    fast = FastPaths(fuse=True, channels_last=True, bf16=True)
    model = accelerate(plain, fast).eval()
    context = clip_for(geometry, 1, device)[:, :geometry.context]
    with torch.no_grad(), fast.autocast(device):
        for _ in range(2):
            model(context, geometry.horizon)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            model(context, geometry.horizon)
            torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: e.device_time_total, reverse=True)[:15]
    total = sum(e.device_time_total for e in prof.key_averages())
    return [{"kernel": e.key[:90], "calls": e.count, "ms": e.device_time_total / 1e3,
             "share": e.device_time_total / total} for e in events]


def error_per_step(device) -> list[float]:
    plain, geometry = build("strpm", "moving_digits", "paper", dict(BENCH_SIZES), device)
    plain.eval()
    clip = clip_for(geometry, 4, device)
    context = clip[:, :geometry.context]
    with torch.no_grad():
        reference = plain(context, geometry.horizon)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = plain(context, geometry.horizon).float()
    return [((low[:, t] - reference[:, t]).norm() / reference[:, t].norm()).item() for t in range(geometry.horizon)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for strpm_variants.json")
    args = parser.parse_args()
    device = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__}
    result["errors_per_step"] = error_per_step(device)
    print("bf16 relative error per predicted step (benchmark-geometry STRPM):",
          " ".join(f"{e:.1e}" for e in result["errors_per_step"]), flush=True)
    result["variants"] = []
    for batch, names in ((1, VARIANTS), (8, VARIANTS[-1:])):  # at batch 8 the graphs of every variant do not fit
        result["variants"] += variant_rows(device, batch, names)
        torch.cuda.empty_cache()
        (args.out / "strpm_variants.json").write_text(json.dumps(result, indent=1))
    print("| batch | variant | ms | ms/sample | × plain | rel. error |\n|---|---|---|---|---|---|")
    for r in result["variants"]:
        print(f"| {r['batch']} | {r['variant']} | {r['ms']:.2f} | {r['ms_per_sample']:.2f} | {r['speedup']:.2f} | "
              f"{r['relative_error']:.1e} |")
    result["top_kernels"] = top_kernels(device)
    (args.out / "strpm_variants.json").write_text(json.dumps(result, indent=1))
    print("| kernel | calls | ms | share |\n|---|---|---|---|")
    for k in result["top_kernels"]:
        print(f"| {k['kernel']} | {k['calls']} | {k['ms']:.2f} | {100 * k['share']:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
