"""Statistics for tables and plots: mean ± 95% confidence interval over seeds, paired comparisons.

* :func:`mean_ci`: Student-t interval, mean ± t(0.975, n - 1) · s / √n; with one value there is no
  interval (None), never a made-up one.
* :func:`paired_difference`: two rows compared on the seeds they share and the same test clips.
  The difference is taken per (seed, clip) pair; its mean gets a 95% two-level bootstrap interval
  that resamples seeds and, independently, clips (DESIGN §4), so seed-to-seed variation widens it
  where averaging over seeds first would hide it. A difference is *significant* only when that
  interval excludes zero. With one shared seed the interval resamples clips alone, and says so
  (``seeds == 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    mean: float
    half_width: float | None  # of the 95% interval; None with fewer than two values
    n: int


def mean_ci(values, confidence: float = 0.95) -> Estimate | None:
    """Mean and Student-t half-width of ``values`` (NaNs dropped); None when there is no value."""
    array = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))],
                       dtype=float)
    if array.size == 0:
        return None
    if array.size == 1:
        return Estimate(float(array[0]), None, 1)
    sem = array.std(ddof=1) / math.sqrt(array.size)
    return Estimate(float(array.mean()), float(stats.t.ppf(0.5 + confidence / 2, array.size - 1) * sem), array.size)


@dataclass(frozen=True)
class Comparison:
    difference: float  # mean of (row - reference) over the shared seeds and the clips
    low: float  # 95% two-level bootstrap interval of that mean
    high: float
    clips: int
    seeds: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


RESAMPLES = 4000


def paired_difference(row: dict[int, np.ndarray], reference: dict[int, np.ndarray], resamples: int = RESAMPLES,
                      seed: int = 0) -> Comparison | None:
    """Compare per-clip values ``{seed: [clips]}`` of a row and a reference on their shared seeds.

    Each bootstrap draw picks S seeds and C clips with replacement (independently) and averages the
    differences of the S x C pairs drawn; the interval is the 2.5th to 97.5th percentile of those
    means. Deterministic for a given ``seed``. None without a shared seed or with fewer than 2 clips.
    """
    seeds = sorted(set(row) & set(reference))
    if not seeds:
        return None
    a = np.stack([np.asarray(row[s], dtype=float) for s in seeds])  # [S, C]
    b = np.stack([np.asarray(reference[s], dtype=float) for s in seeds])
    if a.shape != b.shape or a.shape[1] < 2:
        return None
    diff = a - b  # [S, C]: paired on seed and clip
    n_seeds, n_clips = diff.shape
    rng = np.random.default_rng(seed)
    seed_counts = np.stack([np.bincount(rng.integers(n_seeds, size=n_seeds), minlength=n_seeds)
                            for _ in range(resamples)])  # [R, S]: how often each seed was drawn
    clip_counts = np.stack([np.bincount(rng.integers(n_clips, size=n_clips), minlength=n_clips)
                            for _ in range(resamples)])  # [R, C]
    means = np.einsum("rs,sc,rc->r", seed_counts, diff, clip_counts) / (n_seeds * n_clips)  # [R]
    low, high = np.percentile(means, [2.5, 97.5])
    return Comparison(float(diff.mean()), float(low), float(high), n_clips, n_seeds)
