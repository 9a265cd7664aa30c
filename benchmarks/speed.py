"""Speed of the plain and fast paths of every model, interleaved in one process (issue 12).

For each model at the benchmark geometry (64x64x1, 10 -> 10, a 16x16 latent, 4 layers x 64, 5x5
kernels; CrevNet: its own autoencoder, 4 layers) it times, for every variant of fast-path switches
(:class:`vpbench.run.fast.FastPaths`):

* ``train``: one training step (rollout with teacher forcing, MSE, backward, Adam) at batch 4;
* ``infer``: the autoregressive inference rollout at batch 1 and at the throughput batch (8).

Variants are timed in turns (plain, variant 1, ..., plain, variant 1, ...), so drift in the machine's
speed hits all of them alike; each cell is the median of ``--repeats`` timed calls after warm-up,
every call closed by a device synchronisation. Before timing, each variant's outputs are checked
against the plain path's on the same input and weights: fp32 variants to 1e-5 (``torch.allclose``,
rtol = atol = 1e-5), bf16 ones to a relative error ``‖fast − plain‖ / ‖plain‖ ≤ 1e-2``. On CUDA,
TF32 is switched off so that "fp32" means fp32; ``cuda_graph`` applies to inference only.

FLOPs are counted by ``torch.utils.flop_counter`` on the plain path (convolutions and matmuls, forward
and, for ``train``, backward); achieved FLOP/s = FLOPs / median time. On CUDA the table adds the
fraction of the device's dense datasheet peak (fp32 or bf16, by variant) and peak allocated memory.

With ``--paper-geometries`` (CUDA) it also times STRPM with the released code's switches
(``strpm_official``) at the paper's UCF Sports (512²), Human3.6M (1024²) and SJTU4K (2176x3840)
geometries, inference at batch 1 and 8, eager fp32 against the fast variant.

    python benchmarks/speed.py --device cpu --out runs/speed            # the CPU table
    python benchmarks/speed.py --device cuda --paper-geometries --out D # what benchmarks/gpu.sh runs
    python benchmarks/speed.py --device cpu --quick                     # smoke sizes, one repeat (a test)
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, resolve
from vpbench.run.fast import FastPaths, GraphedRollout, accelerate

MODELS = ["convlstm", "predrnn", "predrnn_v2", "predrnnpp", "e3dlstm", "reversible_pm", "crevnet", "motionrnn",
          "strpm"]
BENCH_SIZES = {"hidden": 64, "layers": 4, "kernel": 5}  # crevnet: layers only (its own autoencoder, 3x3)
PAPER_GEOMETRIES = ["geometry_ucf", "geometry_human36m", "geometry_sjtu4k"]
# dense datasheet peaks (FLOP/s): NVIDIA H100 SXM5 / H200 (same compute); fp32 without tensor cores
DEVICE_PEAKS = {"H100": {"fp32": 67e12, "bf16": 989e12}, "H200": {"fp32": 67e12, "bf16": 989e12}}
TRAIN_BATCH, THROUGHPUT_BATCH = 4, 8


def default_variants(device: torch.device) -> list[FastPaths]:
    if device.type == "cuda":
        return [FastPaths(), FastPaths(fuse=True), FastPaths(channels_last=True), FastPaths(fuse=True, channels_last=True),
                FastPaths(fuse=True, channels_last=True, bf16=True),
                FastPaths(fuse=True, channels_last=True, bf16=True, cuda_graph=True)]
    return [FastPaths(), FastPaths(fuse=True), FastPaths(channels_last=True), FastPaths(fuse=True, channels_last=True)]


def build(name: str, dataset: str, scale: str, overrides: dict | None, device: torch.device):
    """A model at a data geometry, seeded, in eval mode on ``device``; returns (model, geometry)."""
    config = resolve(RunSpec(name, dataset=dataset), scale, {"model": overrides} if overrides else None)
    torch.manual_seed(0)
    geometry = config.data.geometry()
    model = registry.build(config.model, geometry).to(device)
    return model, geometry


def clip_for(geometry, batch: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """A random clip ``[B, T_in + horizon, C, H, W]`` in [0, 1] (never zeros: they time and check too kindly)."""
    shape = (batch, geometry.context + geometry.horizon, geometry.channels, geometry.height, geometry.width)
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Case:
    """One timed callable of one variant: ``train`` (a whole optimiser step) or ``infer`` (a rollout)."""

    def __init__(self, kind: str, model, fast: FastPaths, geometry, batch: int, device: torch.device):
        self.kind, self.model, self.fast, self.geometry, self.batch, self.device = kind, model, fast, geometry, batch, device
        self.clip = clip_for(geometry, batch, device)
        self.context = self.clip[:, :geometry.context]
        self.graph = None
        if kind == "train":
            model.train()
            self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        else:
            model.eval()
            if fast.cuda_graph and device.type == "cuda":
                self.graph = GraphedRollout(model, self.context, geometry.horizon, lambda: fast.autocast(device))

    def output(self) -> torch.Tensor:
        """The variant's output on this case's input, for the agreement check (no optimiser step)."""
        g = self.geometry
        if self.kind == "train":
            with self.fast.autocast(self.device):
                return self.model.rollout(self.context, g.horizon, self.clip[:, g.context:], 1.0).float().detach()
        with torch.no_grad():
            if self.graph is not None:
                return self.graph(self.context).float().clone()
            with self.fast.autocast(self.device):
                return self.model(self.context, g.horizon).float()

    def __call__(self) -> None:
        g = self.geometry
        if self.kind == "infer":
            with torch.no_grad():
                if self.graph is not None:
                    self.graph(self.context)
                else:
                    with self.fast.autocast(self.device):
                        self.model(self.context, g.horizon)
            return
        with self.fast.autocast(self.device):
            prediction = self.model.rollout(self.context, g.horizon, self.clip[:, g.context:], 1.0)
            loss = F.mse_loss(prediction.float(), self.clip[:, 1:])
            auxiliary = self.model.auxiliary_loss()
            if auxiliary is not None:
                loss = loss + auxiliary
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def count_flops(case: Case) -> int:
    """FLOPs of one call of the plain case (convolutions and matmuls; backward included for train)."""
    with FlopCounterMode(display=False) as counter:
        if case.kind == "train":
            g = case.geometry
            prediction = case.model.rollout(case.context, g.horizon, case.clip[:, g.context:], 1.0)
            F.mse_loss(prediction, case.clip[:, 1:]).backward()
            case.model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                case.model(case.context, case.geometry.horizon)
    return counter.get_total_flops()


def agreement(fast: FastPaths, output: torch.Tensor, reference: torch.Tensor) -> dict:
    """fp32: allclose at 1e-5; bf16: relative error ≤ 1e-2."""
    error = ((output - reference).norm() / reference.norm()).item()
    if fast.bf16:
        ok = error <= 1e-2 and bool(torch.isfinite(output).all())
        rule = "relative error <= 1e-2"
    else:
        ok = torch.allclose(output, reference, rtol=1e-5, atol=1e-5)
        rule = "allclose rtol=atol=1e-5"
    return {"relative_error": error, "max_abs_error": (output - reference).abs().max().item(), "agrees": ok, "rule": rule}


def sync_free(model, geometry, fast: FastPaths, device: torch.device) -> bool | None:
    """Whether an inference rollout runs without one host synchronisation (CUDA only; None elsewhere)."""
    if device.type != "cuda":
        return None
    context = clip_for(geometry, 1, device)[:, :geometry.context]
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad(), fast.autocast(device):
            model(context, geometry.horizon)
        return True
    except RuntimeError:
        return False
    finally:
        torch.cuda.set_sync_debug_mode("default")


def time_interleaved(cases: list[Case], warmup: int, repeats: int) -> list[list[float]]:
    """Seconds of each case's calls, run in turns; ``warmup`` untimed rounds first."""
    device = cases[0].device
    for _ in range(warmup):
        for case in cases:
            case()
    synchronize(device)
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for index, case in enumerate(cases):
            synchronize(device)
            start = time.perf_counter()
            case()
            synchronize(device)
            times[index].append(time.perf_counter() - start)
    return times


def peak_of(device: torch.device) -> dict | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks for key, peaks in DEVICE_PEAKS.items() if key in name), None)


def measure(label: str, build_variant, geometry, kinds: list[tuple[str, int]], variants: list[FastPaths],
            device: torch.device, warmup: int, repeats: int, progress) -> list[dict]:
    """Rows for one model: per (kind, batch), every variant against the plain one (variants[0])."""
    rows = []
    peaks = peak_of(device)
    for kind, batch in kinds:
        cases, compile_seconds = [], []
        for fast in variants:
            if kind == "train" and fast.cuda_graph:
                continue  # graphs capture inference only
            start = time.perf_counter()
            cases.append(Case(kind, build_variant(fast), fast, geometry, batch, device))
            if fast.compile:  # the first call compiles: time it apart
                cases[-1].output()
            compile_seconds.append(time.perf_counter() - start)
        outputs = [case.output() for case in cases]
        flops = count_flops(cases[0])
        peak_mb = []
        for case in cases:  # each variant's peak memory alone, then all of them timed in turns
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                case()
                synchronize(device)
                peak_mb.append(torch.cuda.max_memory_allocated(device) / 2**20)
        times = time_interleaved(cases, warmup, repeats)
        base = statistics.median(times[0])
        for index, (case, seconds) in enumerate(zip(cases, times)):
            median = statistics.median(seconds)
            row = {"model": label, "kind": kind, "batch": batch, "variant": case.fast.label,
                   "switches": asdict(case.fast), "ms": median * 1e3, "ms_all": [s * 1e3 for s in seconds],
                   "speedup": base / median, "flops": flops, "flop_per_s": flops / median,
                   **agreement(case.fast, outputs[index], outputs[0])}
            if case.fast.compile:
                row["compile_s"] = compile_seconds[index]
            if peaks is not None:
                row["peak_fraction"] = row["flop_per_s"] / peaks["bf16" if case.fast.bf16 else "fp32"]
            if peak_mb:
                row["peak_memory_mb"] = peak_mb[index]
            rows.append(row)
        del cases, outputs
        progress.update(1)
    return rows


def model_rows(names: list[str], variants, device, quick: bool, warmup: int, repeats: int, save) -> list[dict]:
    """Rows of every model at the benchmark geometry; a model that fails is reported and skipped."""
    scale = "smoke" if quick else "paper"
    kinds = [("train", TRAIN_BATCH), ("infer", 1), ("infer", THROUGHPUT_BATCH)]
    rows: list[dict] = []
    with tqdm(total=len(names) * len(kinds), desc="models", file=sys.stderr) as progress:
        for name in names:
            overrides = None if quick else ({"layers": 4} if name == "crevnet" else dict(BENCH_SIZES))
            try:
                plain, geometry = build(name, "moving_digits", scale, overrides, device)

                def build_variant(fast, plain=plain):
                    return accelerate(copy.deepcopy(plain), fast.for_device(device))

                rows += measure(name, build_variant, geometry, kinds, variants, device, warmup, repeats, progress)
                if device.type == "cuda":
                    fastest = variants[-1]
                    rows[-1]["sync_free"] = sync_free(build_variant(fastest), geometry, fastest, device)
            except Exception as exc:  # one model's failure must not cost the others' numbers
                print(f"{name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
            save(rows)
    return rows


def paper_rows(variant: FastPaths, device, warmup: int, repeats: int, save) -> list[dict]:
    """STRPM (released-code switches) at the three paper geometries: eager fp32 vs ``variant``."""
    rows: list[dict] = []
    kinds = [("infer", 1), ("infer", 8)]
    with tqdm(total=len(PAPER_GEOMETRIES) * len(kinds), desc="paper geometries", file=sys.stderr) as progress:
        for dataset in PAPER_GEOMETRIES:
            try:
                plain, geometry = build("strpm_official", dataset, "paper", None, device)

                def build_variant(fast, plain=plain):
                    return accelerate(copy.deepcopy(plain), fast)

                for row in measure("strpm_official", build_variant, geometry, kinds, [FastPaths(), variant], device,
                                   warmup, repeats, progress):
                    row.update(geometry=f"{geometry.height}x{geometry.width}", dataset=dataset,
                               ms_per_sample=row["ms"] / row["batch"], samples_per_s=row["batch"] * 1e3 / row["ms"])
                    rows.append(row)
                del plain
            except Exception as exc:
                print(f"strpm_official at {dataset}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                rows.append({"model": "strpm_official", "dataset": dataset, "error": f"{type(exc).__name__}: {exc}"})
            torch.cuda.empty_cache()
            save(rows)
    return rows


def markdown(rows: list[dict], paper: bool = False) -> str:
    """The table: one line per (model, kind, batch, variant)."""
    cuda = any("peak_memory_mb" in row for row in rows)
    head = ["model"] + (["geometry"] if paper else []) + ["kind", "batch", "variant", "ms", "× plain", "GFLOP/s"]
    head += (["% peak", "peak MB"] if cuda else []) + (["ms/sample", "samples/s"] if paper else []) + ["agrees (rel. err.)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error'][:200]} |")
            continue
        cells = [r["model"]] + ([r["geometry"]] if paper else []) + [r["kind"], str(r["batch"]), r["variant"],
                                                                    f"{r['ms']:.2f}", f"{r['speedup']:.2f}",
                                                                    f"{r['flop_per_s'] / 1e9:.1f}"]
        if cuda:
            fraction = r.get("peak_fraction")
            cells += ["—" if fraction is None else f"{100 * fraction:.1f}", f"{r['peak_memory_mb']:.0f}"]
        if paper:
            cells += [f"{r['ms_per_sample']:.2f}", f"{r['samples_per_s']:.1f}"]
        cells.append(f"{'yes' if r['agrees'] else 'NO'} ({r['relative_error']:.1e})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment(device: torch.device, threads: int) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "threads": threads, "machine": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), tf32=False, peaks=peak_of(device))
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model configs (default: all nine)")
    parser.add_argument("--variants", default=None,
                        help="semicolon-separated switch sets, e.g. 'fuse;channels_last;fuse,channels_last' "
                             "(plain is always first; default: each CPU switch and both, plus bf16 and cuda_graph on CUDA)")
    parser.add_argument("--quick", action="store_true", help="smoke sizes, one warm-up and one repeat (a test)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds before timing (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="CPU compute threads (default: torch's)")
    parser.add_argument("--paper-geometries", action="store_true", help="also STRPM at the paper geometries (CUDA)")
    parser.add_argument("--out", type=Path, default=None, help="folder for speed.json and speed.md")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    if args.variants is None:
        variants = default_variants(device)
    else:
        variants = [FastPaths()] + [FastPaths.parse(v) for v in args.variants.split(";") if v.strip()]
    variants = list(dict.fromkeys(v.for_device(device) for v in variants))
    warmup, repeats = (1, 1) if args.quick else (args.warmup, args.repeats)
    names = [n.strip() for n in args.models.split(",") if n.strip()]

    result: dict = {"environment": environment(device, torch.get_num_threads()),
                    "geometry": "moving_digits smoke" if args.quick else "64x64x1, 10 -> 10, 16x16 latent, 4 x 64, 5x5"}

    def save(key):
        def write(rows):
            result[key] = rows
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "speed.json").write_text(json.dumps(result, indent=1))
        return write

    model_rows(names, variants, device, args.quick, warmup, repeats, save("rows"))
    tables = [f"## Models ({result['geometry']}; train batch {TRAIN_BATCH}, throughput batch {THROUGHPUT_BATCH})",
              markdown(result["rows"])]
    if args.paper_geometries and device.type == "cuda":
        paper_rows(variants[-1], device, warmup, repeats, save("paper"))
        tables += ["## STRPM (released-code switches) at the paper geometries", markdown(result["paper"], paper=True)]
    text = "\n\n".join([f"Environment: {json.dumps(result['environment'])}"] + tables) + "\n"
    print(text)
    if args.out:
        (args.out / "speed.md").write_text(text)
    rows = result["rows"] + result.get("paper", [])
    failed = [r["model"] for r in rows if "error" in r]
    disagreeing = [f"{r['model']} {r['kind']} b{r['batch']} {r['variant']}" for r in rows if not r.get("agrees", True)]
    if failed or disagreeing:
        print(f"failed: {failed}; outputs disagree: {disagreeing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
