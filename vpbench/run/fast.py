"""Fast paths: switches that speed a predictor up without changing what it computes.

Each switch is independent, so a benchmark can show what each one buys (``benchmarks/speed.py``):

* ``fuse``: the models' own conv fusions (every module with a ``fused`` attribute; see
  :mod:`vpbench.interface.fusion`): gate convs whose outputs are added as one conv over concatenated inputs,
  convs that read one tensor as one conv, parallel convs (STED's codecs, RPM's h/m convs) as one
  grouped conv, E3D-LSTM's gate terms summed inside one causal 3-D conv each.
* ``channels_last``: 4-D weights in channels-last order (5-D ones in channels-last-3d), so
  convolutions run NHWC kernels (oneDNN on the CPU, cuDNN's tensor-core paths on CUDA).
* ``compile``: ``torch.compile`` of every per-step unit (each module with a ``fused`` attribute:
  the cells, and the codec's ``encode``/``decode``), which also fuses the gates' pointwise arithmetic.
* ``bf16`` (CUDA only): bfloat16 autocast; relative error about 1e-2, not the 1e-5 of the others.
* ``cuda_graph`` (CUDA only, inference): the whole autoregressive rollout captured once per input
  shape and replayed, which removes the per-kernel launch cost (the rollout has no host
  synchronisation, which capture would refuse).

Fused and plain paths share the parameters, so checkpoints and state dicts do not depend on the
switches, and the run id does not either (a run records the switches it ran with).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from vpbench.interface.fusion import set_fused
from vpbench.interface.predictor import Predictor

CUDA_ONLY = ("bf16", "cuda_graph")


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths are on (module docstring)."""

    fuse: bool = False
    channels_last: bool = False
    compile: bool = False
    bf16: bool = False
    cuda_graph: bool = False

    @classmethod
    def parse(cls, text: str) -> FastPaths:
        """``"fuse,channels_last"`` -> FastPaths; ``""``/``"none"`` -> all off; ``"all"`` -> every switch."""
        names = [f.name for f in fields(cls)]
        text = text.strip()
        if text in ("", "none"):
            return cls()
        if text == "all":
            return cls(**{name: True for name in names})
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [part for part in chosen if part not in names]
        if unknown:
            raise ValueError(f"fast paths: unknown {', '.join(map(repr, unknown))} (known: {', '.join(names)}, all, none)")
        return cls(**{name: True for name in chosen})

    def for_device(self, device: torch.device) -> FastPaths:
        """These switches without the CUDA-only ones when ``device`` is not CUDA."""
        if device.type == "cuda":
            return self
        return FastPaths(**{**asdict(self), **{name: False for name in CUDA_ONLY}})

    def for_training(self) -> FastPaths:
        """The switches a training run applies: the model-level ones (bf16 training is ``train.amp``)."""
        return FastPaths(fuse=self.fuse, channels_last=self.channels_last, compile=self.compile)

    @property
    def label(self) -> str:
        on = [name for name, value in asdict(self).items() if value]
        return "+".join(on) if on else "plain"

    def autocast(self, device: torch.device):
        """The autocast context of these switches (bf16 on CUDA; no cast cache, so graphs can capture it)."""
        if self.bf16 and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return nullcontext()


def to_channels_last(model: nn.Module) -> nn.Module:
    """Every 4-D parameter in channels-last order and every 5-D one in channels-last-3d, in place."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    for parameter in model.parameters():
        if parameter.dim() in formats:
            parameter.data = parameter.data.contiguous(memory_format=formats[parameter.dim()])
    return model


def compile_steps(model: Predictor) -> int:
    """``torch.compile`` each per-step unit of ``model`` in place; returns how many were compiled."""
    compiled = 0
    units = [m for m in model.modules() if hasattr(m, "fused") and not hasattr(m, "encode")]
    inner = {id(sub) for unit in units for sub in unit.modules() if sub is not unit}
    for module in units:
        if id(module) not in inner:  # compile the outermost units only
            module.compile()
            compiled += 1
    codec = getattr(model, "codec", None)
    if codec is not None:
        codec.encode = torch.compile(codec.encode)
        codec.decode = torch.compile(codec.decode)
        compiled += 2
    return compiled


def accelerate(model: Predictor, fast: FastPaths) -> Predictor:
    """Apply the model-level switches (fuse, channels_last, compile) to ``model`` in place and return it.

    bf16 and cuda_graph act where the model is called: :meth:`FastPaths.autocast` and
    :class:`GraphedRollout`.
    """
    set_fused(model, fast.fuse)
    if fast.channels_last:
        to_channels_last(model)
    if fast.compile:
        compile_steps(model)
    return model


class GraphedRollout:
    """Inference ``model(context, horizon)`` captured as one CUDA graph and replayed.

    ``context`` fixes the shape ``[B, T_in, C, H, W]``; every call copies its input into the captured
    buffer, replays, and returns the captured output ``[B, horizon, C, H, W]`` (overwritten by the
    next call: clone it to keep it).
    """

    def __init__(self, model: Predictor, context: Tensor, horizon: int, autocast=nullcontext, warmup: int = 2):
        self.model, self.horizon, self.autocast = model, horizon, autocast
        self.static_input = context.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                with autocast():
                    model(self.static_input, horizon)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph), autocast():
            self.static_output = model(self.static_input, horizon)

    def __call__(self, context: Tensor) -> Tensor:
        self.static_input.copy_(context)
        self.graph.replay()
        return self.static_output
