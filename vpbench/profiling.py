"""Model cost: parameter counts (FLOPs and latency arrive with the profiler of issue 5).

Parameters are those of the modules that run at inference, counted with and without the affine
parameters of normalisation layers: the paper excludes LayerNorm, whose size depends on the
resolution.
"""

from __future__ import annotations

from torch import nn

NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"params": all, "params_without_norm": all minus norm-layer affine parameters}``."""
    total = sum(p.numel() for p in model.parameters())
    norm = sum(p.numel() for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False))
    return {"params": total, "params_without_norm": total - norm}
