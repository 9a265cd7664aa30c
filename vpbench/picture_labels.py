"""What the pictures of predictions write on them: the font, and the frame index convention.

Frame indices are the tables' (t = 1 … T_in for context frames, T_in + 1 … T_in + T for predictions),
as the sample strips (:mod:`vpbench.report.samples`) and each run's GIFs (:mod:`vpbench.run.evaluate`) show.
"""

from __future__ import annotations

from PIL import ImageFont


def label_font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's bundled font, which has θ, τ, − and ≤), at ``size`` px."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def frame_label(t: int) -> str:
    """``t=<t>``, a negative index with a true minus sign."""
    return f"t={t}".replace("-", "−")
