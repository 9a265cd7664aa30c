"""The embedded default data: bouncing digits and textured sprites, procedurally, at any size.

Nothing is downloaded: digits are rendered with the TrueType font Pillow bundles
(``ImageFont.load_default(size=...)``), sprites are geometric shapes filled with procedural
gratings or checkers, and the background is a smooth random texture. Every clip is a pure
function of ``(data seed, split, index)`` through its own NumPy generator, so the train, val and
test splits draw from disjoint random streams and never share a clip.

A clip is ``[T, C, H, W]`` uint8 with T = context + horizon, from 64x64 up to 4K (2176x3840).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vpbench.config.schema import DataConfig

GENERATOR_VERSION = 1  # bump when the pixels a config produces change
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
SHAPES = ("circle", "square", "triangle", "diamond")


def clip_rng(cfg: DataConfig, split: str, index: int) -> np.random.Generator:
    """The random stream of one clip; different splits never share a stream."""
    return np.random.default_rng([cfg.seed, SPLIT_STREAMS[split], index])


def _digit_mask(digit: int, size: int) -> np.ndarray:
    """An anti-aliased glyph of ``digit``, ``[size, size]`` float in [0, 1], centred."""
    font = ImageFont.load_default(size=max(4, int(size * 1.3)))
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    draw.text(((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top), str(digit), fill=255, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _shape_mask(shape: str, size: int) -> np.ndarray:
    """A filled shape, ``[size, size]`` float in [0, 1] (supersampled 4x for smooth edges)."""
    big = size * 4
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    box = (big * 0.05, big * 0.05, big * 0.95, big * 0.95)
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "square":
        draw.rectangle(box, fill=255)
    elif shape == "triangle":
        draw.polygon([(big / 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=255)
    else:  # diamond
        draw.polygon([(big / 2, box[1]), (box[2], big / 2), (big / 2, box[3]), (box[0], big / 2)], fill=255)
    return np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0


def _texture(rng: np.random.Generator, height: int, width: int, channels: int) -> np.ndarray:
    """A grating or checker between two random colours, ``[C, height, width]`` float in [0, 1]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, 1)
    angle, cycles, phase = rng.uniform(0, np.pi), rng.uniform(2, 6), rng.uniform(0, 2 * np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    if rng.random() < 0.5:
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * cycles * u + phase)
    else:
        v = -np.sin(angle) * xx + np.cos(angle) * yy
        pattern = ((np.floor(cycles * u) + np.floor(cycles * v)) % 2).astype(np.float32)
    colour_a, colour_b = rng.uniform(0.3, 1.0, channels), rng.uniform(0.0, 0.7, channels)
    return colour_a[:, None, None] * pattern + colour_b[:, None, None] * (1 - pattern)


def _background(rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """``[C, H, W]`` float: black, or a dim smooth texture (a few low-frequency sinusoids)."""
    c, h, w = cfg.channels, cfg.height, cfg.width
    if cfg.moving_objects.background == "black":
        return np.zeros((c, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    field = np.zeros((c, h, w), np.float32)
    for _ in range(4):
        fy, fx, phase = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 2 * np.pi)]
        weight = rng.uniform(0.02, 0.08, c)[:, None, None]
        field += weight * (1 + np.sin(2 * np.pi * (fy * yy + fx * xx) + phase))
    return field


def generate_clip(cfg: DataConfig, split: str, index: int) -> np.ndarray:
    """Clip ``index`` of ``split``: ``[T, C, H, W]`` uint8, T = context + horizon."""
    rng = clip_rng(cfg, split, index)
    opts = cfg.moving_objects
    frames_n, c, h, w = cfg.context + cfg.horizon, cfg.channels, cfg.height, cfg.width
    side = min(h, w)
    size = max(4, int(round(opts.size * side)))
    size = min(size, h, w)
    frames = np.repeat(_background(rng, cfg)[None], frames_n, axis=0)  # [T, C, H, W]

    for _ in range(opts.objects):
        kind = opts.kinds[rng.integers(len(opts.kinds))]
        if kind == "digit":
            alpha = _digit_mask(int(rng.integers(10)), size)
            colour = rng.uniform(0.6, 1.0, c) if c == 3 else np.ones(1)
            paint = np.broadcast_to(colour[:, None, None], (c, size, size)).astype(np.float32)
        else:
            alpha = _shape_mask(SHAPES[rng.integers(len(SHAPES))], size)
            paint = _texture(rng, size, size, c)
        position = rng.uniform([0, 0], [h - size, w - size])
        heading = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(0.3, 1.0) * opts.speed * side * np.array([np.sin(heading), np.cos(heading)])
        limit = np.array([h - size, w - size], dtype=np.float64)
        for t in range(frames_n):
            y, x = np.rint(position).astype(int)
            region = frames[t, :, y:y + size, x:x + size]
            region[:] = alpha * paint + (1 - alpha) * region
            position = position + velocity
            for axis in range(2):  # bounce off the walls
                if position[axis] < 0 or position[axis] > limit[axis]:
                    velocity[axis] = -velocity[axis]
                    mirrored = -position[axis] if position[axis] < 0 else 2 * limit[axis] - position[axis]
                    position[axis] = np.clip(mirrored, 0, limit[axis])
    return np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8)
