"""How much faster could an output-preserving fast path make each model's training step? (issue 12)

Fusing convolutions, changing memory formats and fusing gate arithmetic keep every convolution's and
matmul's FLOPs: they can only remove the time spent around them. This script bounds what they can
buy on this machine. For one plain training step of each model at ``benchmarks/speed.py``'s geometry
(batch 4, teacher forcing, MSE, backward, Adam) it

1. records every convolution and matmul the step dispatches, forward and backward, with its shapes,
   strides and arguments (``TorchDispatchMode``);
2. in each of ``--repeats`` rounds, times one whole step, then replays each distinct call once, alone,
   on fresh random tensors, and adds its time times its count;
3. takes the median over rounds of both (rounds in turns, so drift in the machine's speed hits both).

``heavy`` is the sum of those isolated times: the step if nothing but its convolutions and matmuls
ran, each at the speed it reaches alone. ``step / heavy`` is the ceiling of any fast path that keeps
the same convolution library and FLOPs; ``step / (FLOPs / sgemm)`` is the ceiling if every FLOP ran
at the rate of a large square matrix product measured in the same process (the machine's practical
peak), which no convolution at these sizes reaches.

    OMP_NUM_THREADS=2 python benchmarks/step_ceiling.py --threads 2 --out leaderboards/speed
    python benchmarks/step_ceiling.py --quick          # smoke sizes, one repeat (a test)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import BENCH_SIZES, MODELS, TRAIN_BATCH, Case, build, environment  # noqa: E402

from vpbench.run.fast import FastPaths  # noqa: E402

aten = torch.ops.aten
HEAVY = {aten.convolution.default, aten.convolution_backward.default, aten.mm.default, aten.addmm.default,
         aten.bmm.default, aten.baddbmm.default}


class HeavyCalls(TorchDispatchMode):
    """Counts the convolutions and matmuls dispatched inside it, keyed by a replayable signature."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HEAVY:
            self.calls[(func, tuple(_describe(a) for a in args), tuple(sorted((k, _describe(v)) for k, v in kwargs.items())))] += 1
        return func(*args, **kwargs)


def _describe(value):
    """A hashable stand-in for one argument: a tensor becomes its shape, stride and dtype."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.stride()), value.dtype)
    if isinstance(value, (list, tuple)):
        return tuple(_describe(v) for v in value)
    return value


def _rebuild(described):
    if isinstance(described, tuple) and described and described[0] == "tensor":
        _, shape, stride, dtype = described
        extent = 1 + sum((size - 1) * step for size, step in zip(shape, stride))  # expanded views need less
        return torch.randn(extent, dtype=dtype).as_strided(shape, stride)
    if isinstance(described, tuple):
        return [_rebuild(v) for v in described]
    return described


def replayable(func, args, kwargs):
    """A call of ``func`` on fresh random tensors of the recorded shapes and strides."""
    tensors = [_rebuild(a) for a in args]
    named = {k: _rebuild(v) for k, v in kwargs}
    return lambda: func(*tensors, **named)


def seconds_of(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def sgemm_rate(repeats: int, n: int = 2048) -> float:
    """FLOP/s of an n x n fp32 matrix product: the best of ``repeats`` (a peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n ** 3 / min(seconds_of(lambda: a @ b) for _ in range(repeats))


def ceiling_row(name: str, quick: bool, warmup: int, repeats: int, sgemm: float) -> dict:
    """One model's step against its heavy calls alone, timed in turns (a step, then every replayed
    call once, ``repeats`` rounds) so that drift in the machine's speed hits both alike."""
    overrides = None if quick else ({"layers": 4} if name == "crevnet" else dict(BENCH_SIZES))
    model, geometry = build(name, "moving_digits", "smoke" if quick else "paper", overrides, torch.device("cpu"))
    case = Case("train", model, FastPaths(), geometry, TRAIN_BATCH, torch.device("cpu"))
    recorder = HeavyCalls()
    with FlopCounterMode(display=False) as flops, recorder:
        case()
    calls = [(replayable(func, args, kwargs), count) for (func, args, kwargs), count in recorder.calls.items()]
    for _ in range(warmup):
        case()
        for call, _count in calls:
            call()
    steps, heavies = [], []
    for _ in range(repeats):
        steps.append(seconds_of(case))
        heavies.append(sum(count * seconds_of(call) for call, count in calls))
    step, heavy = statistics.median(steps), statistics.median(heavies)
    total_flops = flops.get_total_flops()
    return {"model": name, "step_ms": step * 1e3, "heavy_ms": heavy * 1e3, "step_ms_all": [s * 1e3 for s in steps],
            "heavy_ms_all": [h * 1e3 for h in heavies], "heavy_calls": sum(recorder.calls.values()),
            "distinct_calls": len(recorder.calls), "flops": total_flops, "step_flop_per_s": total_flops / step,
            "ceiling_same_kernels": step / heavy, "ceiling_at_sgemm_rate": step / (total_flops / sgemm)}


def markdown(rows: list[dict], sgemm: float) -> str:
    lines = [f"fp32 sgemm 2048²: {sgemm / 1e9:.0f} GFLOP/s", "",
             "| model | step ms | conv+matmul alone ms | calls (distinct) | step GFLOP/s | ceiling, same kernels | "
             "ceiling at sgemm rate |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error'][:200]} |")
            continue
        lines.append(f"| {r['model']} | {r['step_ms']:.0f} | {r['heavy_ms']:.0f} | {r['heavy_calls']} ({r['distinct_calls']}) "
                     f"| {r['step_flop_per_s'] / 1e9:.0f} | {r['ceiling_same_kernels']:.2f}x | {r['ceiling_at_sgemm_rate']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model configs (default: all nine)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes, one warm-up and one repeat (a test)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of one timed step and every call replayed once (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="CPU compute threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="folder for step_ceiling.json and step_ceiling.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, repeats = (1, 1) if args.quick else (args.warmup, args.repeats)
    sgemm = sgemm_rate(repeats)
    rows = []
    for name in tqdm([n.strip() for n in args.models.split(",") if n.strip()], desc="models", file=sys.stderr):
        try:
            rows.append(ceiling_row(name, args.quick, warmup, repeats, sgemm))
        except Exception as exc:  # one model's failure must not cost the others' numbers
            print(f"{name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
    text = f"Environment: {json.dumps(environment(torch.device('cpu'), torch.get_num_threads()))}\n\n{markdown(rows, sgemm)}\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "step_ceiling.json").write_text(json.dumps({"sgemm_flop_per_s": sgemm, "rows": rows}, indent=1))
        (args.out / "step_ceiling.md").write_text(text)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
