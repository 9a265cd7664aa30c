"""Statistics for tables and plots: mean ± 95% confidence interval over seeds, paired comparisons.

* :func:`mean_ci`: Student-t interval, mean ± t(0.975, n - 1) · s / √n; with one value there is no
  interval (None), never a made-up one.
* :func:`paired_difference`: two rows compared on the same test clips. Each clip's value is first
  averaged over the seeds both rows share, then the clip-wise differences get a t interval and a
  two-sided paired t-test p-value (n = number of clips).
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
    difference: float  # mean of (row - reference) over clips
    half_width: float  # 95% interval of that mean
    p_value: float  # two-sided paired t-test
    clips: int
    seeds: int


def paired_difference(row: dict[int, np.ndarray], reference: dict[int, np.ndarray]) -> Comparison | None:
    """Compare per-clip values ``{seed: [clips]}`` of a row and a reference on their shared seeds."""
    seeds = sorted(set(row) & set(reference))
    if not seeds:
        return None
    a = np.mean([row[s] for s in seeds], axis=0)  # [clips], averaged over the shared seeds
    b = np.mean([reference[s] for s in seeds], axis=0)
    if a.shape != b.shape or a.size < 2:
        return None
    diff = a - b
    sem = diff.std(ddof=1) / math.sqrt(diff.size)
    if sem == 0:
        return Comparison(float(diff.mean()), 0.0, 1.0 if diff.mean() == 0 else 0.0, diff.size, len(seeds))
    p_value = float(stats.ttest_rel(a, b).pvalue)
    return Comparison(float(diff.mean()), float(stats.t.ppf(0.975, diff.size - 1) * sem), p_value, diff.size,
                      len(seeds))
