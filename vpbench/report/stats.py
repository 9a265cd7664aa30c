"""Statistics for tables and plots: mean ± 95% confidence interval over seeds, paired comparisons.

* :func:`mean_ci`: Student-t interval, mean ± t(0.975, n - 1) · s / √n; with one value there is no
  interval (None), never a made-up one.
* :func:`paired_difference`: two rows compared on the seeds they share and the same test clips, by
  variance components with a t reference. The per-pair differences ``d[s, c]`` (seed s, clip or
  clip block c) are a two-way layout with one value per cell, ``d = μ + seed_s + clip_c + e``;
  its mean squares give the variance of the mean,

      V = (MS_residual + max(MS_seed - MS_residual, 0) + max(MS_clip - MS_residual, 0)) / (S · C),

  and the interval is mean ± t(0.975, ν) · √V, with ν the Satterthwaite degrees of freedom of V,
  capped at the larger component's (S - 1 when seeds dominate, C - 1 when clips do). Both sources of variation widen it, and
  at three seeds it keeps its 5 % (:mod:`vpbench.report.calibration` checks it by simulation).
  Correlated clips (consecutive segments of one video) enter as blocks: their per-block means are
  the clip factor. With one shared seed the interval covers clips alone and says so
  (``seeds == 1``); with one block, seeds alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

METHOD = ("95% interval from variance components (seeds, clips, residual) with a t reference at "
          "Satterthwaite's degrees of freedom, capped at the larger component's")


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
    difference: float  # mean of (row - reference) over the shared seeds and the clips (or blocks)
    low: float  # its 95% interval
    high: float
    clips: int
    seeds: int
    blocks: int  # the clip factor's levels: clips, or the blocks they were grouped into
    df: float  # the t reference's degrees of freedom

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0

    @property
    def half_width(self) -> float:
        """The smallest difference this comparison could resolve: a |difference| below it is 'could not tell'."""
        return (self.high - self.low) / 2


def paired_difference(row: dict[int, np.ndarray], reference: dict[int, np.ndarray],
                      blocks: Sequence | None = None, confidence: float = 0.95) -> Comparison | None:
    """Compare per-clip values ``{seed: [clips]}`` of a row and a reference on their shared seeds.

    ``blocks`` labels each clip with its block (its video or segment): clips of one block are
    averaged first, and blocks, not clips, are the independent units. None without a shared seed,
    with clip counts that differ, or with fewer than 2 units to vary over.
    """
    seeds = sorted(set(row) & set(reference))
    if not seeds:
        return None
    a = [np.asarray(row[s], dtype=float) for s in seeds]
    b = [np.asarray(reference[s], dtype=float) for s in seeds]
    if len({v.shape for v in a + b}) != 1:
        return None
    a, b = np.stack(a), np.stack(b)  # [S, C]
    diff = a - b  # [S, C]: paired on seed and clip
    n_clips = diff.shape[1]
    if blocks is not None:
        labels = np.asarray(blocks)
        if labels.shape != (n_clips,):
            raise ValueError(f"blocks: {labels.shape[0] if labels.ndim else 0} labels for {n_clips} clips")
        _, block_of = np.unique(labels, return_inverse=True)
        members = np.eye(block_of.max() + 1)[block_of]  # [C, G]: one-hot block of each clip
        diff = diff @ (members / members.sum(axis=0))  # [S, G]: per-block means
    n_seeds, n_units = diff.shape  # [S, G]
    if n_seeds * n_units < 2 or (n_seeds == 1 and n_units < 2):
        return None
    variance, df = _variance_of_mean(diff)
    half = float(special.stdtrit(df, 0.5 + confidence / 2) * math.sqrt(variance)) if variance > 0 else 0.0
    mean = float(diff.mean())
    return Comparison(mean, mean - half, mean + half, n_clips, n_seeds, n_units, float(df))


def _variance_of_mean(diff: np.ndarray) -> tuple[float, float]:
    """The estimated variance of ``diff.mean()`` and its degrees of freedom, for ``diff`` [S, G].

    Non-negative components from the mean squares (residual σ², seed C·σ²_seed, clip S·σ²_clip; a
    component estimated below zero is zero), their sum over S·G, and Satterthwaite's degrees of
    freedom for that sum, capped at those of the larger of the seed and clip components when it
    exceeds the residual: Satterthwaite alone lets the degrees of freedom grow exactly when the
    few-seed mean square comes out small, and then rejects true nulls too often (7-8 % at 3 seeds).
    """
    n_seeds, n_units = diff.shape
    if n_seeds == 1 or n_units == 1:  # one factor varies: its own t interval
        values = diff.ravel()
        return float(values.var(ddof=1) / values.size), values.size - 1
    grand = diff.mean()
    seed_means, unit_means = diff.mean(axis=1), diff.mean(axis=0)
    ms_seed = n_units * ((seed_means - grand) ** 2).sum() / (n_seeds - 1)
    ms_unit = n_seeds * ((unit_means - grand) ** 2).sum() / (n_units - 1)
    residual_df = (n_seeds - 1) * (n_units - 1)
    ms_residual = ((diff - seed_means[:, None] - unit_means[None, :] + grand) ** 2).sum() / residual_df
    seed_part, unit_part = max(ms_seed - ms_residual, 0.0), max(ms_unit - ms_residual, 0.0)
    total = ms_residual + seed_part + unit_part
    if total <= 0:
        return 0.0, residual_df
    # total as a combination of mean squares: ms_seed and ms_unit enter where their part is kept
    keep_seed, keep_unit = float(seed_part > 0), float(unit_part > 0)
    residual_weight = 1.0 - keep_seed - keep_unit
    spread = (keep_seed * ms_seed ** 2 / (n_seeds - 1) + keep_unit * ms_unit ** 2 / (n_units - 1)
              + residual_weight ** 2 * ms_residual ** 2 / residual_df)
    df = total ** 2 / spread
    if max(seed_part, unit_part) > ms_residual:
        df = min(df, n_seeds - 1 if seed_part >= unit_part else n_units - 1)
    return float(total / (n_seeds * n_units)), float(df)
