"""The significance test checked by simulation: false positives on true nulls, coverage of true effects.

Paired differences are drawn as ``d[s, c] = effect + seed_s + clip_c + e_sc`` (normal components
with the standard deviations of a :class:`Regime`) and passed through
:func:`vpbench.report.stats.paired_difference`, as a table would pass them. The regimes span the
committed ablation's components (``leaderboards/ablation``, RPM against each row: seed 0.08-0.20 dB,
clip 0-0.75 dB, residual 0.25-0.39 dB). A block regime draws clips in blocks that share an effect
(consecutive segments of one video) and passes the block labels.

``tests/test_stats.py`` asserts the rates; ``leaderboards/calibrate_stats.py`` prints the table in
``leaderboards/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpbench.report.stats import paired_difference


@dataclass(frozen=True)
class Regime:
    name: str
    seed: float  # standard deviations of the paired difference's components, dB
    clip: float
    residual: float
    block: float = 0.0  # an effect shared by the clips of a block
    block_size: int = 1


REGIMES = (
    Regime("seed-dominated", seed=0.20, clip=0.10, residual=0.35),
    Regime("clip-dominated", seed=0.02, clip=0.75, residual=0.25),
    Regime("mixed", seed=0.10, clip=0.25, residual=0.35),
    Regime("blocks of 5 clips", seed=0.10, clip=0.10, residual=0.35, block=0.40, block_size=5),
)
SEEDS = (3, 5, 10)
CLIPS = (15, 256)
EFFECT = 0.5  # dB, the true difference whose coverage is checked


@dataclass(frozen=True)
class Rates:
    false_positive: float  # share of intervals excluding 0 when the true difference is 0
    coverage: float  # share of intervals containing the true difference EFFECT
    mean_half_width: float  # dB, under the effect


def simulate(regime: Regime, seeds: int, clips: int, trials: int, rng: np.random.Generator,
             effect: float = EFFECT) -> Rates:
    """Rates over ``trials`` simulated comparisons of ``seeds`` x ``clips`` pairs each."""
    blocks = np.arange(clips) // regime.block_size if regime.block_size > 1 else None
    rejected = covered = 0
    widths = []
    for _ in range(trials):
        null = _draw(regime, seeds, clips, rng)
        rejected += paired_difference(null, _zeros(seeds, clips), blocks=blocks).significant
        shifted = {s: v + effect for s, v in _draw(regime, seeds, clips, rng).items()}
        comparison = paired_difference(shifted, _zeros(seeds, clips), blocks=blocks)
        covered += comparison.low <= effect <= comparison.high
        widths.append(comparison.half_width)
    return Rates(rejected / trials, covered / trials, float(np.mean(widths)))


def _draw(regime: Regime, seeds: int, clips: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """``{seed: [clips]}`` of simulated paired differences with a true mean of zero."""
    n_blocks = -(-clips // regime.block_size)
    shared = np.repeat(rng.normal(0, regime.block, n_blocks), regime.block_size)[:clips]
    d = (rng.normal(0, regime.seed, (seeds, 1)) + rng.normal(0, regime.clip, (1, clips)) + shared[None]
         + rng.normal(0, regime.residual, (seeds, clips)))
    return dict(enumerate(d))


def _zeros(seeds: int, clips: int) -> dict[int, np.ndarray]:
    return {s: np.zeros(clips) for s in range(seeds)}


def table(trials: int, seed: int = 0) -> list[dict]:
    """Every regime x S x C, as rows of the calibration table."""
    rng = np.random.default_rng(seed)
    rows = []
    for regime in REGIMES:
        for n_seeds in SEEDS:
            for n_clips in CLIPS:
                rates = simulate(regime, n_seeds, n_clips, trials, rng)
                rows.append({"regime": regime.name, "seeds": n_seeds, "clips": n_clips, **rates.__dict__})
    return rows
