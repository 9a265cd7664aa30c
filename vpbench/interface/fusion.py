"""Output-preserving conv fusions that the models' fast paths share (``fast.fuse``, :mod:`vpbench.run.fast`).

Each helper builds one convolution from the weights of several, every call, by concatenating them,
so gradients reach the original parameters and a state dict is the same with or without fusion:

* :func:`summed_conv`: ``Σ_i W_i * x_i`` (convs whose outputs are added, e.g. a cell's input-to-gate
  and hidden-to-gate convs) as one conv over the inputs concatenated on channels.
* :func:`grouped_conv`: n convs of equal shape on n different inputs as one grouped conv
  (``groups = n``), e.g. STED's three encoders after their first layer.
* :func:`grouped_layer_norm`: per-group LayerNorm over ``[F, h, w]`` after such a conv, with each
  group's own affine parameters.

Results equal the unfused convs up to the order of floating-point summation (about 1e-6 relative in
fp32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def summed_conv(pairs: list[tuple[Tensor, Tensor]], padding: int) -> Tensor:
    """``Σ_i conv2d(x_i, W_i)`` as one stride-1, bias-free conv.

    ``pairs``: ``(x_i [B, C_i, h, w], W_i [C_out, C_i, k, k])`` with one C_out and k for all.
    Returns ``[B, C_out, h', w']``.
    """
    inputs = torch.cat([x for x, _ in pairs], dim=1)
    weight = torch.cat([w for _, w in pairs], dim=1)
    return F.conv2d(inputs, weight, padding=padding)


def _stacked(tensors: list[Tensor | None]) -> Tensor | None:
    return None if tensors[0] is None else torch.cat(tensors)


def grouped_conv(x: Tensor, convs: list[nn.Conv2d | nn.ConvTranspose2d]) -> Tensor:
    """n convs of one configuration, each on its own slice of ``x``, as one grouped conv.

    ``x``: the n inputs concatenated on channels, ``[B, n·C_in, h, w]``; ``convs``: n modules with
    ``groups = 1`` and identical shapes. Returns ``[B, n·C_out, h', w']``, the n outputs in order.
    """
    first = convs[0]
    weight, bias = torch.cat([c.weight for c in convs]), _stacked([c.bias for c in convs])
    if isinstance(first, nn.ConvTranspose2d):
        return F.conv_transpose2d(x, weight, bias, first.stride, first.padding, first.output_padding, len(convs),
                                  first.dilation)
    return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation, len(convs))


def parallel_stacks(x: Tensor, stacks: list[nn.Sequential], shared_input: bool) -> list[Tensor]:
    """n ``Sequential`` stacks of one layout (convs and ReLUs) as one stack of grouped convs.

    ``x``: ``[B, C_in, h, w]`` that every stack reads (``shared_input``; the first conv becomes one
    conv with concatenated outputs) or the n inputs concatenated, ``[B, n·C_in, h, w]``. Returns the
    n outputs, each ``[B, C_out, h', w']``.
    """
    for index, layers in enumerate(zip(*stacks)):
        if isinstance(layers[0], nn.ReLU):
            x = torch.relu(x)
        elif index == 0 and shared_input:
            x = shared_input_conv(x, list(layers))
        else:
            x = grouped_conv(x, list(layers))
    return list(torch.chunk(x, len(stacks), dim=1))


def shared_input_conv(x: Tensor, convs: list[nn.Conv2d]) -> Tensor:
    """n convs of one configuration that read the same ``x [B, C_in, h, w]``, as one conv: ``[B, n·C_out, h', w']``."""
    first = convs[0]
    weight, bias = torch.cat([c.weight for c in convs]), _stacked([c.bias for c in convs])
    return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation)


def grouped_norm(x: Tensor, norms: list[nn.Module | None]) -> list[Tensor]:
    """Apply each group's norm to its slice of ``x [B, n·F, h, w]``; returns n x ``[B, F, h, w]``.

    ``norms``: n modules of one kind, each ``nn.LayerNorm([F, h, w])``, ``nn.GroupNorm(1, F)`` or None
    (no norm). Both norms take their statistics over one group's ``[F, h, w]``, so all groups are
    normalised in one call and the affine parameters applied after.
    """
    n = len(norms)
    if norms[0] is None:
        return list(torch.chunk(x, n, dim=1))
    b, channels, h, w = x.shape
    grouped = x.reshape(b, n, channels // n, h, w)
    first = norms[0]
    normed = wide_layer_norm(grouped, 3, first.eps)  # [B, n, F, h, w]
    if isinstance(first, nn.LayerNorm):
        weight = torch.stack([m.weight for m in norms])  # [n, F, h, w]
        bias = torch.stack([m.bias for m in norms])
    else:  # GroupNorm(1, F): per-channel affine
        weight = torch.stack([m.weight for m in norms])[:, :, None, None]  # [n, F, 1, 1]
        bias = torch.stack([m.bias for m in norms])[:, :, None, None]
    return list((normed * weight + bias).unbind(1))


def wide_layer_norm(x: Tensor, dims: int, eps: float) -> Tensor:
    """LayerNorm without affine over the last ``dims`` dimensions, in fp32, for few and long rows.

    ``F.layer_norm`` gives each row (here: each sample's ``[F, h, w]``, 65,280 values at SJTU4K) to one
    thread block, so at batch 1 a handful of blocks do all the work (41.5 % of STRPM's CUDA time at
    4K, ``benchmarks/strpm_variants.py``); ``var_mean`` spreads each row over the whole device.
    """
    x = x.float()
    var, mean = torch.var_mean(x, dim=tuple(range(-dims, 0)), keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps)


def set_fused(model: nn.Module, fused: bool) -> int:
    """Switch every module with a ``fused`` attribute to its fused path (or back); returns how many."""
    switched = 0
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = fused
            switched += 1
    return switched
