"""Model cost: parameters, FLOPs with two counters, latency and peak memory (DESIGN §4).

Conventions, recorded with every profile (:data:`CONVENTIONS`):

* **Parameters** of the built predictor, with and without the affine parameters of normalisation
  layers (the paper excludes LayerNorm, whose size depends on the resolution).
* **FLOPs** on the inference path (``model(context, horizon)``, autoregressive, no grad) at batch 1.
  ``torch.utils.flop_counter.FlopCounterMode`` counts convolutions and matmuls as 2 x MACs and runs
  on the meta device, so the paper geometries (4K included) need no memory. MACs = its FLOPs / 2.
  fvcore counts the same ops as MACs (one fused multiply-add = 1) by tracing a real forward, so it
  runs where that forward fits. Neither counts elementwise work: a third counter adds every
  pointwise op (the gates' σ, tanh, ⊙, +) at one FLOP per output element, reported separately, and
  every other op with arithmetic but no formula is listed as skipped.
* **Per step**: the rollout runs T_in + horizon - 1 recurrent steps; the counter's running total is
  read each time the codec decodes a frame (the end of a step), so steps whose cost grows
  (E3D-LSTM's recall) are exact. ``per_step_mean`` = per sample / steps.
* **Latency**: ``warmup`` untimed forwards, then ``samples`` timed forwards at batch 1 and at a
  throughput batch, each closed by a device synchronisation; the median and interquartile range are
  reported with every sample kept. Peak memory: CUDA's max allocated bytes, or on the CPU the
  process's peak resident set during the timed forwards (Linux's VmHWM, reset before timing through
  /proc/self/clear_refs; it includes the process's own baseline, e.g. the loaded libraries).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import resource
import signal
import time
import warnings
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from vpbench.config.schema import ProfileConfig, RunConfig
from vpbench.errors import VpbenchError
from vpbench.interface import registry
from vpbench.interface.predictor import Geometry, Predictor

NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
CONVENTIONS = {
    "macs": "one fused multiply-add = 1 MAC; FLOPs = 2 x MACs; convolutions and matmuls only",
    "elementwise": "pointwise aten ops, 1 FLOP per output element, not in MACs",
    "batch": 1,
    "path": "inference: model(context, horizon), autoregressive, no grad",
    "per_step": "running total at each decoded frame; steps = context + horizon - 1",
    "transposed_conv": "counted on the input size (both counters)",
    "latency": "median and IQR of synchronised samples after warm-up",
}
# ops that only move or create data: neither counted nor reported as skipped
_MOVEMENT = {"view", "_unsafe_view", "reshape", "permute", "cat", "stack", "split", "split_with_sizes", "chunk",
             "slice", "select", "expand", "t", "transpose", "clone", "copy_", "zeros", "zeros_like", "new_zeros",
             "empty", "empty_like", "detach", "alias", "unsqueeze", "squeeze", "unbind", "constant_pad_nd",
             "_to_copy", "lift_fresh", "full", "fill_", "zero_", "index", "flatten", "contiguous", "narrow",
             "as_strided", "new_empty", "_reshape_alias", "unfold", "lift_fresh_copy", "scalar_tensor", "rand",
             "uniform_"}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"params": all, "params_without_norm": all minus norm-layer affine parameters}``."""
    total = sum(p.numel() for p in model.parameters())
    norm = sum(p.numel() for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False))
    return {"params": total, "params_without_norm": total - norm}


class OpCensus(TorchDispatchMode):
    """Counts pointwise FLOPs (one per output element) and lists ops with neither a formula nor a pointwise tag."""

    def __init__(self):
        super().__init__()
        self.elementwise = 0
        self.skipped: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.native_layer_norm.default and args[0].is_meta:
            out = _meta_layer_norm(*args)
        else:
            out = func(*args, **(kwargs or {}))
        packet = func._overloadpacket
        name = packet.__name__
        if packet in flop_registry or name in _MOVEMENT:
            return out
        if torch.Tag.pointwise in func.tags:
            outputs = out if isinstance(out, (tuple, list)) else (out,)
            self.elementwise += sum(t.numel() for t in outputs if isinstance(t, torch.Tensor))
        else:
            self.skipped[f"aten.{name}"] += 1
        return out


def _meta_layer_norm(x: torch.Tensor, normalized_shape, *_) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``aten.native_layer_norm``'s outputs on meta, shaped directly: (out like ``x``, mean, rstd of
    ``x.shape[:-k] + (1,) * k``). The same shapes as torch's meta kernel, a Python reference that
    otherwise takes most of a paper-scale count; layer norm has no MAC formula either way."""
    kept = x.shape[:x.dim() - len(normalized_shape)] + (1,) * len(normalized_shape)
    return torch.empty_like(x), x.new_empty(kept), x.new_empty(kept)


def _context(geometry: Geometry, batch: int, device: torch.device | str, dtype=torch.float32) -> torch.Tensor:
    shape = (batch, geometry.context, geometry.channels, geometry.height, geometry.width)
    if torch.device(device).type == "meta":
        return torch.empty(shape, device="meta", dtype=dtype)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device, dtype)


def _codec_flops_per_step(model: Predictor, geometry: Geometry, device: str) -> int | None:
    """FLOPs of one encode + one decode, or None for a predictor without a codec."""
    codec = getattr(model, "codec", None)
    if codec is None:
        return None
    from vpbench.interface.predictor import Features

    frame = _context(dataclasses.replace(geometry, context=1), 1, device)[:, 0]  # [1, C, H, W]
    h, w = codec.latent_size(geometry.height, geometry.width)
    hidden = torch.empty(1, codec.hidden_channels, h, w, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        codec.encode(frame)
        codec.decode(Features.single(hidden))
    return counter.get_total_flops()


def torch_flops(model: Predictor, geometry: Geometry, device: str = "meta") -> dict[str, Any]:
    """FLOPs of the inference path at batch 1, whole sample and per recurrent step (torch counter)."""
    steps = geometry.context + geometry.horizon - 1
    x = _context(geometry, 1, device)
    census = OpCensus()
    marks: list[int] = []
    codec = getattr(model, "codec", None)
    with FlopCounterMode(display=False) as counter, census, torch.no_grad():
        if codec is not None:  # read the running total at the end of every step
            decode = codec.decode

            def marked_decode(features):
                frame = decode(features)
                marks.append(counter.get_total_flops())
                return frame

            codec.decode = marked_decode
        try:
            model(x, geometry.horizon)
        finally:
            if codec is not None:
                del codec.decode  # back to the class's method
    total = counter.get_total_flops()
    by_op = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    per_step = [b - a for a, b in zip([0] + marks, marks)] if len(marks) == steps else [total / steps] * steps
    conv = sum(n for op, n in by_op.items() if "convolution" in op)
    codec_flops = _codec_flops_per_step(model, geometry, device)
    split = None if codec_flops is None else {"codec": codec_flops * steps // 2,
                                              "memory": (total - codec_flops * steps) // 2}
    return {
        "counter": "torch.utils.flop_counter",
        "steps": steps,
        "macs_per_sample": total // 2,
        "flops_per_sample": total,
        "macs_per_step": [int(f // 2) for f in per_step],
        "macs_per_step_mean": total / 2 / steps,
        "conv_macs_per_sample": conv // 2,
        "macs_by_part": split,
        "elementwise_flops_per_sample": census.elementwise,
        "macs_by_op": {op: n // 2 for op, n in by_op.items()},
        "skipped_ops": dict(census.skipped),
    }


class _InferencePath(nn.Module):
    """``model(context, horizon)`` with the horizon fixed: the form fvcore's tracer takes."""

    def __init__(self, model: Predictor, horizon: int):
        super().__init__()
        self.model, self.horizon = model, horizon

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.model(context, self.horizon)


def fvcore_flops(model: Predictor, geometry: Geometry, device: torch.device | str = "cpu") -> dict[str, Any]:
    """fvcore's count of the inference path at batch 1 (a real traced forward on ``device``)."""
    x = _context(geometry, 1, device)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow and torch.jit deprecation
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(_InferencePath(model, geometry.horizon).eval(), (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        total = analysis.total()
        by_op = dict(analysis.by_operator())
        unsupported = dict(analysis.unsupported_ops())
    return {"counter": "fvcore", "macs_per_sample": int(total), "conv_macs_per_sample": int(by_op.get("conv", 0)),
            "macs_by_op": {k: int(v) for k, v in by_op.items()}, "skipped_ops": unsupported}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: torch.device) -> bool:
    """Reset the peak-memory counter; False where the CPU's high-water mark cannot be reset."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _peak_memory_mb(device: torch.device, reset: bool) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    if reset:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "process peak RSS during the timed forwards"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS over its lifetime"


def measure_latency(model: Predictor, geometry: Geometry, device: torch.device, batch: int, warmup: int,
                    samples: int, precision: str = "fp32") -> dict[str, Any]:
    """Median / IQR of ``samples`` synchronised inference forwards of ``batch`` clips, in ms."""
    x = _context(geometry, batch, device)
    reset = _reset_peak_memory(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    times = []
    with torch.no_grad(), autocast:
        for _ in range(warmup):
            model(x, geometry.horizon)
        _synchronize(device)
        for _ in range(samples):
            start = time.perf_counter()
            model(x, geometry.horizon)
            _synchronize(device)
            times.append((time.perf_counter() - start) * 1e3)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    peak, peak_kind = _peak_memory_mb(device, reset)
    return {"batch": batch, "warmup": warmup, "samples_ms": times, "median_ms": float(median),
            "iqr_ms": float(q3 - q1), "total_s": sum(times) / 1e3, "peak_memory_mb": peak, "peak_memory": peak_kind}


def profile_model(build, geometry: Geometry, cfg: ProfileConfig, device: torch.device) -> dict[str, Any]:
    """Everything :data:`CONVENTIONS` describes for the predictor ``build()`` makes; failures are recorded."""
    result: dict[str, Any] = {"conventions": CONVENTIONS, "device": str(device), "precision": cfg.precision,
                              "compile": cfg.compile, "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "geometry": dataclasses.asdict(geometry)}
    with torch.device("meta"):
        meta_model = build().eval()
    result["parameters"] = parameter_counts(meta_model)
    codec = getattr(meta_model, "codec", None)  # the shared codec interface; a model without one has its own
    result["codec"] = type(codec).__name__ if codec is not None else f"its own ({type(meta_model).__name__})"
    result["flops"] = {}
    if cfg.flops:
        result["flops"]["torch"] = torch_flops(meta_model, geometry)
    if not (cfg.fvcore or cfg.latency):
        return result
    torch.manual_seed(0)
    model = build().to(device).eval()
    if cfg.fvcore:
        try:
            result["flops"]["fvcore"] = fvcore_flops(model, geometry, device)
        except Exception as exc:  # recorded: a counter's failure is a result, not a crash
            result["flops"]["fvcore"] = {"error": f"{type(exc).__name__}: {exc}"}
    sample_gmacs = result["flops"].get("torch", {}).get("macs_per_sample", 0) / 1e9
    if cfg.latency and cfg.max_latency_gmacs and sample_gmacs > cfg.max_latency_gmacs:
        skipped = (f"not timed: {sample_gmacs:.0f} GMAC per sample exceeds profile.max_latency_gmacs = "
                   f"{cfg.max_latency_gmacs:.0f}")
        result["latency"] = {"batch_1": {"batch": 1, "error": skipped}}
    elif cfg.latency:
        timed = torch.compile(model) if cfg.compile else model
        result["latency"] = {}
        for key, batch in (("batch_1", 1), ("throughput", cfg.throughput_batch)):
            if batch < 1 or (key == "throughput" and batch == 1):
                continue
            try:
                result["latency"][key] = measure_latency(timed, geometry, device, batch, cfg.warmup, cfg.samples,
                                                         cfg.precision)
            except torch.OutOfMemoryError as exc:
                result["latency"][key] = {"batch": batch, "error": f"out of memory: {exc}".splitlines()[0]}
    return result


def profile_key(cfg: RunConfig, device: torch.device) -> str:
    """What a run's profile depends on, hashed (16 hex digits): the model config, the geometry, what is
    profiled, the device kind, vpbench and torch, and the paper-scale counterpart whose counts it
    carries; not the seeds, the training or the suite.

    Runs that share a key share one profile (:meth:`vpbench.store.Store.cached_profile`).
    """
    from vpbench import __version__

    content = {"model": cfg.model, "geometry": dataclasses.asdict(cfg.data.geometry()),
               "profile": dataclasses.asdict(cfg.profile), "device": device.type, "vpbench": __version__,
               "torch": torch.__version__, "paper_geometry": cfg.paper_counterpart}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def profile_run(cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    """The profile of a run's model at the run's geometry, plus, below paper scale, the counts of its
    paper-scale counterpart (the same config files and overrides resolved at paper scale:
    ``cfg.paper_counterpart``). Counts on the meta device come from :func:`meta_counts`'s disk cache."""
    geometry = cfg.data.geometry()
    result = profile_model(lambda: registry.build(cfg.model, geometry), geometry, cfg.profile, device)
    if cfg.paper_counterpart is not None:
        paper = cfg.paper_counterpart
        result["paper_geometry"] = paper if "error" in paper else meta_counts(paper["model"],
                                                                               Geometry(**paper["geometry"]))
    return result


def meta_counts(model: dict[str, Any], geometry: Geometry) -> dict[str, Any]:
    """Parameters and torch-counter MACs of the predictor ``model`` builds at ``geometry``, on meta.

    They depend only on the model config, the geometry and the code, so they are cached on disk under
    ``$VPBENCH_DATA/counts/`` by a hash of those (the code: the sources of vpbench and of the model's
    package, and torch's version): a fresh store or process does not count them again. A count that
    fails is recorded, not raised (the run's own profile stands).
    """
    from vpbench.data.storage import data_root

    content = {"model": model, "geometry": dataclasses.asdict(geometry), "code": _code_digest(model["name"]),
               "torch": torch.__version__}
    key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = data_root() / "counts" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        pass
    try:
        counts = ProfileConfig(flops=True, fvcore=False, latency=False)
        result = profile_model(lambda: registry.build(model, geometry), geometry, counts, torch.device("meta"))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(result))
        partial.replace(path)
    except OSError:
        pass  # a cache that cannot be written is only slower
    return result


@functools.cache
def _code_digest(model_name: str) -> str:
    """sha256 over the ``.py`` files of vpbench and of the package that registers ``model_name``."""
    import vpbench

    roots = {Path(vpbench.__file__).parent}
    module = registry.get(model_name).builder.__module__.split(".")[0]
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        roots.add(Path(spec.origin).parent)
    digest = hashlib.sha256()
    for root in sorted(roots):
        for file in sorted(root.rglob("*.py")):
            digest.update(str(file.relative_to(root.parent)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def model_listing() -> list[str]:
    """``vpbench models``: each registered model, its description and, where ``configs/models/<name>.yaml``
    exists, its parameters at the paper geometry (built on the meta device: nothing is allocated)."""
    from vpbench.config.resolution import RunSpec, find_config, resolve
    from vpbench.errors import VpbenchError

    names = registry.names()
    width = max(map(len, names), default=0)
    lines, geometry = [], None
    for name in names:
        try:
            find_config("models", name)
            config = resolve(RunSpec(name), "paper")
            try:
                with torch.device("meta"):  # parameters only: nothing allocated, nothing run
                    counts = parameter_counts(registry.build(config.model, config.data.geometry()))
            except Exception as exc:
                raise VpbenchError(f"{type(exc).__name__}: {exc}") from None
            data = config.data
            geometry = f"{data.height}x{data.width}, p {data.patch}, sr {data.stride_ratio}"
            size = f"{counts['params'] / 1e6:8.2f} M ({counts['params_without_norm'] / 2**20:7.2f} Mi w/o norm)"
        except VpbenchError as exc:
            size = f"no paper-scale count: {exc}"
        lines.append(f"{name:<{width}}  {size}  {registry.get(name).description}")
    if geometry:
        lines.append(f"\nParameters at the paper geometry of configs/datasets/moving_objects.yaml ({geometry}); "
                     "M = 10^6, Mi = 2^20 without norm-layer affine parameters.")
    return lines


BUILD_SECONDS = 30  # a model that takes longer to build on the meta device is refused (model.layers = 100000)
TRAINING_BYTES_PER_PARAMETER = 16  # float32 weights, their gradients and Adam's two moments


def check_trainable(configs: list[RunConfig], memory: int | None = None) -> None:
    """Refuse, before anything runs, a model whose training step would not fit in memory.

    Each distinct model config is built once on the meta device (no memory, no data) and one training
    step's forward (a batch of ``train.batch_size`` clips) run on meta tensors. The estimate is two parts.
    The parameters cost 16 bytes each: weights, gradients and Adam's moments. The activations are what
    autograd saves for the backward pass, counted by a saved-tensors hook; they are halved under
    ``train.amp``. That sum is compared with ``memory`` (default: this machine's RAM; a GPU's memory
    when the runs train on it). A build or forward that takes over BUILD_SECONDS is refused too. The
    error names the config's model section and the sizes.
    """
    if memory is None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    seen = set()
    for cfg in configs:
        key = json.dumps([cfg.model, dataclasses.asdict(cfg.data.geometry()), cfg.train.batch_size, cfg.train.amp],
                         sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        parameters, activations = _meta_training_step(cfg)
        need = parameters * TRAINING_BYTES_PER_PARAMETER + activations
        if need > memory:
            raise VpbenchError(f"model {cfg.model_name} ({_sizes(cfg.model)}): {parameters:,} parameters and "
                               f"{activations / 2**30:.1f} GiB of activations per training step of "
                               f"{cfg.train.batch_size} clips; training needs at least {need / 2**30:.1f} GiB, "
                               f"more than the {memory / 2**30:.1f} GiB of memory it would train in")


def _meta_training_step(cfg: RunConfig) -> tuple[int, int]:
    """``(parameters, activation bytes)`` of one training step of ``cfg``, measured on the meta device."""
    def too_slow(signum, frame):
        raise VpbenchError(f"model {cfg.model_name} ({_sizes(cfg.model)}): building it and one forward on the meta "
                           f"device took more than {BUILD_SECONDS} s; its sizes are beyond what a run can train")

    saved = [0]

    def count(tensor: torch.Tensor) -> torch.Tensor:
        saved[0] += tensor.numel() * tensor.element_size()
        return tensor

    data = cfg.data
    handler = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(BUILD_SECONDS)
    try:
        with torch.device("meta"):
            model = registry.build(cfg.model, data.geometry())
            clips = torch.empty(cfg.train.batch_size, data.context + data.horizon, data.channels, data.height,
                                data.width)  # [B, T, C, H, W]
            with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
                model.rollout(clips[:, :data.context], data.horizon, clips[:, data.context:], 0.0, 1.0)
        parameters = sum(p.numel() for p in model.parameters())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, handler)
    return parameters, saved[0] // (2 if cfg.train.amp != "off" else 1)


def _sizes(model: dict[str, Any]) -> str:
    """The model section's integer sizes, for an error message (at most 200 characters)."""
    text = ", ".join(f"{k}={v}" for k, v in model.items() if isinstance(v, int) and not isinstance(v, bool))
    return text[:200]
