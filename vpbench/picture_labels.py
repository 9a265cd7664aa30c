"""What the pictures of predictions write on them: the font, and the frame index convention.

Frame indices count predictions from 1 and context frames up to 0 (t = −3 … 0, 1 … T), as the
sample strips (:mod:`vpbench.report.samples`) and each run's GIFs (:mod:`vpbench.run.evaluate`) show.
"""

from __future__ import annotations

from PIL import ImageFont


def label_font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's bundled font, which has θ, τ, − and ≤), at ``size`` px."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def frame_label(t: int) -> str:
    """``t=−3`` … ``t=0`` for context frames, ``t=1`` … for predictions (a true minus sign)."""
    return f"t={t}".replace("-", "−")
