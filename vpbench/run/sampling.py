"""Scheduled-sampling schedules: the probability of feeding true frames at each training step.

Both are pure functions of the step, so resuming at step s restores them exactly.

* ``thuml`` (PredRNN, PredRNN++, E3D-LSTM, MotionRNN, STRPM code): horizon steps see the truth with
  probability eta = start - rate·(s + 1), floored at 0 and 0 from ``stop`` on; context steps always
  see the truth.
* ``reverse`` (PredRNN-V2, ``baselines-spec.md`` §1.4): before s1 both probabilities are 0.5;
  between s1 and s2 the context probability rises as 1 - 0.5·exp(-(s - s1)/alpha) and the horizon
  probability falls linearly from 0.5 to 0; after s2 they are 1 and 0.
"""

from __future__ import annotations

import math

from vpbench.config.schema import SamplingConfig


def forcing(cfg: SamplingConfig, step: int) -> tuple[float, float]:
    """``(context_forcing, teacher_forcing)`` at 0-based training step ``step``."""
    if cfg.kind == "none":
        return 1.0, 0.0
    if cfg.kind == "teacher":
        return 1.0, 1.0
    if cfg.kind == "thuml":
        if step >= cfg.stop:
            return 1.0, 0.0
        return 1.0, max(0.0, cfg.start - cfg.rate * (step + 1))
    s1, s2 = cfg.reverse_start, cfg.reverse_stop
    if step < s1:
        return 0.5, 0.5
    if step < s2:
        return 1.0 - 0.5 * math.exp(-(step - s1) / cfg.alpha), 0.5 * (1.0 - (step - s1) / (s2 - s1))
    return 1.0, 0.0
