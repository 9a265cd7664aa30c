"""Moving digits: the Moving MNIST protocol (Srivastava et al., ICML 2015) on real handwritten digits.

Each clip shows ``digits`` (2) handwritten digits of 28x28 moving inside a black 64x64 frame: every
digit starts at a uniform position, moves with a direction uniform on the circle and a speed of
``speed`` x (64 - 28) pixels per frame (Srivastava et al.'s ``step_length`` = 0.1), bounces off the
walls, and overlapping digits combine by their maximum. 10 -> 10 frames by default. A smaller frame
takes digits resized to ``size`` (Lanczos; 14 in 32x32 is the 64x64 protocol at half resolution, the
same motion relative to the frame).

The digits are the 5,000 real MNIST-style handwritten digits (20x20, 500 per class) of OpenCV's
``samples/data/digits.png``, installed by Debian's ``opencv-doc``; each is centred in 28x28 as MNIST
centres its 20x20 digits. Test clips draw from digits whose index is 0 mod 10, val from 1 mod 10,
train from the rest, so no digit image is in two splits. Every clip is a pure function of
``(data seed, split, index)`` through its own NumPy generator.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from vpbench.errors import DataError
from vpbench.config.schema import DataConfig

GENERATOR_VERSION = 1  # bump when the pixels a config produces change
DIGITS_FILE = "digits.png"
DIGITS_LOCATION = Path("/usr/share/doc/opencv-doc/examples/data")
DIGIT = 28  # MNIST's digit canvas
SPLIT_STREAMS = {"train": 10, "val": 11, "test": 12}  # distinct from the moving-objects streams


def digits_path() -> Path:
    """OpenCV's ``digits.png`` (``$VPBENCH_ASSETS`` first), or a DataError saying how to install it."""
    import os

    candidates = [Path(os.environ["VPBENCH_ASSETS"]) / DIGITS_FILE] if os.environ.get("VPBENCH_ASSETS") else []
    candidates.append(DIGITS_LOCATION / DIGITS_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise DataError(f"moving_digits needs OpenCV's {DIGITS_FILE}: apt-get install opencv-doc "
                    f"(looked for {', '.join(str(c) for c in candidates)})")


@cache
def _digits(path: Path, size: int = DIGIT) -> np.ndarray:
    """``[5000, size, size]`` uint8: the sheet's 20x20 digits (50 rows x 100 columns) padded by 4 on each
    side to MNIST's 28x28, then Lanczos-resized to ``size`` when it differs."""
    sheet = np.asarray(Image.open(path).convert("L"))
    if sheet.shape != (1000, 2000):
        raise DataError(f"{path}: expected a 1000x2000 sheet of 20x20 digits, got {sheet.shape[0]}x{sheet.shape[1]}")
    cells = np.pad(sheet.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 20, 20), ((0, 0), (4, 4), (4, 4)))
    if size == DIGIT:
        return cells
    return np.stack([np.asarray(Image.fromarray(cell).resize((size, size), Image.LANCZOS)) for cell in cells])


def _pool(split: str) -> np.ndarray:
    """Indices of the digits a split may draw."""
    index = np.arange(5000)
    if split == "test":
        return index[index % 10 == 0]
    if split == "val":
        return index[index % 10 == 1]
    return index[index % 10 >= 2]


def generate_clip(cfg: DataConfig, split: str, index: int) -> np.ndarray:
    """Clip ``index`` of ``split``: ``[T, C, H, W]`` uint8 (grey repeated to C channels), T = context + horizon."""
    opts = cfg.moving_digits
    digits = _digits(digits_path(), opts.size)
    rng = np.random.default_rng([cfg.seed, SPLIT_STREAMS[split], index])
    frames_n, h, w = cfg.context + cfg.horizon, cfg.height, cfg.width
    if h < opts.size or w < opts.size:
        raise DataError(f"moving_digits: frames must be at least moving_digits.size = {opts.size} on each "
                        f"side, got {h}x{w}")
    canvas = np.zeros((frames_n, h, w), np.uint8)
    size = opts.size
    limit = np.array([h - size, w - size], dtype=np.float64)
    pool = _pool(split)
    for _ in range(opts.digits):
        image = digits[pool[rng.integers(len(pool))]]
        position = rng.uniform(0, 1, 2) * limit
        theta = rng.uniform(0, 2 * np.pi)
        velocity = opts.speed * limit * np.array([np.sin(theta), np.cos(theta)])
        for t in range(frames_n):
            y, x = np.rint(position).astype(int)
            np.maximum(canvas[t, y:y + size, x:x + size], image, out=canvas[t, y:y + size, x:x + size])
            position = position + velocity
            for axis in range(2):  # bounce: reflect the position and reverse the velocity
                if position[axis] < 0 or position[axis] > limit[axis]:
                    velocity[axis] = -velocity[axis]
                    position[axis] = np.clip(-position[axis] if position[axis] < 0
                                             else 2 * limit[axis] - position[axis], 0, limit[axis])
    return np.repeat(canvas[:, None], cfg.channels, axis=1)  # [T, C, H, W]
