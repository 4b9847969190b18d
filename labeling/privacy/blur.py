"""Blurring rectangular regions of an image. Django-free.

Only pixels inside the padded boxes change: each box is cut out, blurred on its own and
pasted back, so everything outside every padded box keeps its exact values.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageFilter

METHODS = ("gaussian", "pixelate")


@dataclass(frozen=True)
class Box:
    """Pixel corners in the image's own coordinates (x1 < x2, y1 < y2)."""

    x1: float
    y1: float
    x2: float
    y2: float


def padded_box(box: Box, *, padding: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box grown by ``padding`` times its own width/height on every side, in whole pixels
    and clipped to the image; None when nothing of it lies inside the image."""
    pad_x = (box.x2 - box.x1) * padding
    pad_y = (box.y2 - box.y1) * padding
    left = max(0, int(box.x1 - pad_x))
    top = max(0, int(box.y1 - pad_y))
    right = min(width, int(round(box.x2 + pad_x + 0.4999)))
    bottom = min(height, int(round(box.y2 + pad_y + 0.4999)))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def blur_region(crop: Image.Image, *, method: str, strength: int) -> Image.Image:
    """One cut-out blurred. ``strength`` 1-100 scales with the region's size, so a small face and
    a large one are equally unreadable: at 100 the Gaussian radius is a quarter of the region's
    longer side and a pixelate block a quarter of it too (about 4 blocks across)."""
    if method not in METHODS:
        raise ValueError(f"unknown blur method {method!r}; expected one of {', '.join(METHODS)}")
    if not 1 <= strength <= 100:
        raise ValueError(f"blur strength must be 1-100, got {strength}")
    side = max(crop.size)
    scale = strength / 100 * side / 4
    if method == "gaussian":
        return crop.filter(ImageFilter.GaussianBlur(radius=max(1.0, scale)))
    block = max(2, int(scale))
    small = crop.resize((max(1, crop.width // block), max(1, crop.height // block)), Image.Resampling.BOX)
    return small.resize(crop.size, Image.Resampling.NEAREST)


def blur_boxes(image: Image.Image, boxes: Iterable[Box], *, method: str = "gaussian", strength: int = 50,
               padding: float = 0.15) -> Image.Image:
    """A copy of ``image`` with every box (padded) blurred; ``image`` itself is left alone.

    The result depends only on the input and the boxes, so rendering from the same original
    twice gives the same pixels (no blur on top of blur)."""
    if not 0 <= padding <= 1:
        raise ValueError(f"padding must be 0-1 (a share of the box size), got {padding}")
    out = image.copy()
    for box in boxes:
        area = padded_box(box, padding=padding, width=image.width, height=image.height)
        if area is None:
            continue
        out.paste(blur_region(out.crop(area), method=method, strength=strength), area[:2])
    return out
