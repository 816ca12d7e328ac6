"""Scenes of handwritten digits on procedural backgrounds, with exact boxes and masks.

The digits are scikit-learn's (shipped inside the package, no download), split by source digit
with the digits task's stratified split (``digits.split_indices``): training scenes are drawn
only from training digits and held-out scenes only from held-out digits, so a held-out digit is
never trained on.

A scene is a ``size`` x ``size`` RGB image quantised to 8 bits: a background made of a colour
gradient, smooth noise and clutter (translucent rectangles and ellipses), and 1 to a few digits,
each upscaled from 8x8 to a random side, inked in a colour that contrasts with what lies under it,
and placed so no two digits' squares overlap. A digit's mask is its upscaled intensity >= 0.5
(class = digit + 1, 0 the background); its box is the tight box of those pixels, xyxy in pixels
with the right and bottom edges exclusive. Everything is drawn from a ``torch.Generator``: the same
seed gives the same scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from edgebench.prune.digits import SOURCE_SIZE, source_digits, split_indices

INK_THRESHOLD = 0.5  # upscaled intensity at which a pixel belongs to the digit
PLACEMENT_TRIES = 50  # random positions tried per digit before the scene makes do with fewer
MAX_CLUTTER = 6


@dataclass(frozen=True)
class SceneLayout:
    """How scenes look: canvas side, digits per scene and digit side as a fraction of the canvas."""

    size: int
    min_digits: int
    max_digits: int
    min_scale: float
    max_scale: float


class DigitSource(NamedTuple):
    """Some of the data set's digits: images (N, 1, 8, 8) in [0, 1], labels (N,) 0..9 and rows
    (N,), their indices in the whole data set."""

    images: torch.Tensor
    labels: torch.Tensor
    rows: torch.Tensor


class Scene(NamedTuple):
    """One scene: image (3, H, W) uint8; boxes (K, 4) float32 xyxy; labels (K,) int64 1..10;
    mask (H, W) int64 (0 background, digit + 1 on its pixels); rows (K,) the source digits."""

    image: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    rows: torch.Tensor


def split_sources(seed: int, test_fraction: float = 0.25) -> tuple[DigitSource, DigitSource]:
    """The training and held-out digits, split exactly as the digits task splits them."""
    images, labels = source_digits()
    train, test = split_indices(labels, seed, test_fraction)
    return (DigitSource(images[train], labels[train], train), DigitSource(images[test], labels[test], test))


def draw_scenes(source: DigitSource, layout: SceneLayout, count: int, generator: torch.Generator) -> list[Scene]:
    """``count`` scenes drawn in turn from ``generator``."""
    return [draw_scene(source, layout, generator) for _ in range(count)]


def draw_scene(source: DigitSource, layout: SceneLayout, generator: torch.Generator) -> Scene:
    """One scene of digits from ``source``; the generator's stream decides everything."""
    size = layout.size
    canvas = _background(size, generator)
    mask = torch.zeros(size, size, dtype=torch.long)
    boxes, labels, rows, squares = [], [], [], []
    wanted = int(_integers(layout.min_digits, layout.max_digits + 1, generator))
    for _ in range(wanted):
        side = max(SOURCE_SIZE, round(float(_uniform(layout.min_scale, layout.max_scale, generator)) * size))
        square = _free_square(side, size, squares, generator)
        if square is None:
            continue
        squares.append(square)
        pick = int(_integers(0, len(source.labels), generator))
        x, y = square[0], square[1]
        box = _ink(canvas, mask, source.images[pick], int(source.labels[pick]) + 1, x, y, side, generator)
        if box is not None:
            boxes.append(box)
            labels.append(int(source.labels[pick]) + 1)
            rows.append(int(source.rows[pick]))
    image = (canvas.clamp(0, 1) * 255).round().to(torch.uint8)
    return Scene(image, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                 torch.tensor(labels, dtype=torch.long), mask, torch.tensor(rows, dtype=torch.long))


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 scene images as float32 in [0, 1], the input torchvision detectors expect."""
    return images.float() / 255.0


def _ink(canvas: torch.Tensor, mask: torch.Tensor, digit: torch.Tensor, label: int,
         x: int, y: int, side: int, generator: torch.Generator) -> list[float] | None:
    """Draw one digit into ``canvas`` and ``mask`` at (x, y); its tight box, None if it has no pixel."""
    alpha = F.interpolate(digit[None], size=(side, side), mode="bilinear", align_corners=False)[0]
    pixels = alpha[0] >= INK_THRESHOLD
    if not pixels.any():
        return None
    under = canvas[:, y:y + side, x:x + side]
    # Per channel, light ink on a dark background and dark ink on a light one.
    dark = under.mean(dim=(1, 2)) > 0.5
    shade = _uniform(0.0, 0.2, generator, (3,))
    ink = torch.where(dark, shade, 1.0 - shade)[:, None, None]
    canvas[:, y:y + side, x:x + side] = under * (1 - alpha) + ink * alpha
    mask[y:y + side, x:x + side][pixels] = label
    ys, xs = pixels.nonzero(as_tuple=True)
    return [float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1), float(y + ys.max() + 1)]


def _free_square(side: int, size: int, taken: list[tuple[int, int, int]],
                 generator: torch.Generator) -> tuple[int, int, int] | None:
    """A random (x, y, side) square inside the canvas overlapping none of ``taken``."""
    for _ in range(PLACEMENT_TRIES):
        x, y = (int(v) for v in _integers(0, size - side + 1, generator, (2,)))
        if all(x + side <= ox or ox + oside <= x or y + side <= oy or oy + oside <= y
               for ox, oy, oside in taken):
            return x, y, side
    return None


def _background(size: int, generator: torch.Generator) -> torch.Tensor:
    """(3, size, size) float: a gradient between two colours, smooth noise, then clutter."""
    angle = float(_uniform(0.0, 2 * math.pi, generator))
    coordinates = torch.linspace(0, 1, size)
    ramp = math.cos(angle) * coordinates[None, :] + math.sin(angle) * coordinates[:, None]
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    start, end = _uniform(0.0, 1.0, generator, (3,)), _uniform(0.0, 1.0, generator, (3,))
    canvas = start[:, None, None] * (1 - ramp) + end[:, None, None] * ramp
    grid = int(_integers(3, 9, generator))
    noise = torch.randn(1, 3, grid, grid, generator=generator) * 0.12
    canvas = canvas + F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0]
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for _ in range(int(_integers(0, MAX_CLUTTER + 1, generator))):
        cx, cy, rx, ry = (_uniform(0.0, 1.0, generator, (4,)) * torch.tensor([size, size, size / 4, size / 4])).tolist()
        rx, ry = rx + 2, ry + 2
        if bool(_integers(0, 2, generator)):
            inside = ((columns - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1
        else:
            inside = ((columns - cx).abs() <= rx) & ((rows - cy).abs() <= ry)
        colour, opacity = _uniform(0.0, 1.0, generator, (3,)), _uniform(0.2, 0.6, generator)
        canvas = torch.where(inside, canvas * (1 - opacity) + colour[:, None, None] * opacity, canvas)
    return canvas.clamp(0, 1)


def _uniform(low: float, high: float, generator: torch.Generator, shape: tuple[int, ...] = ()) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _integers(low: int, high: int, generator: torch.Generator, shape: tuple[int, ...] = ()) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator)
