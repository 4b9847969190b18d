"""Box-to-polygon assist: OpenCV GrabCut, initialised with the annotator's box, turns the box
into a polygon outline that the annotator then corrects. Offline, no weights, Django-free
(the view in labeling/api.py reads the image and checks the caller's role).

GrabCut runs on a crop around the box (the box plus a margin of background, which GrabCut
models as "surely not the object"), downscaled so its longer side is at most
`WORK_SIDE_PX`; the biggest foreground contour is simplified to at most `MAX_POINTS`
vertices and mapped back to original-image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

WORK_SIDE_PX = 384
MAX_POINTS = 40
ITERATIONS = 4
# Background context around the box, as a share of the box's side (at least MIN_MARGIN_PX).
MARGIN_SHARE = 0.15
MIN_MARGIN_PX = 8
MIN_BOX_SIDE_PX = 4


class AssistError(ValueError):
    """The request cannot be answered with a polygon; the message says why."""


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float


def box_from_request(data: Any, *, width: int, height: int) -> Box:
    """The box of a request body, clipped to the image; AssistError names what is wrong."""
    if not isinstance(data, dict):
        raise AssistError('send {"box": {"x1": .., "y1": .., "x2": .., "y2": ..}} in image pixels')
    values = {}
    for key in ("x1", "y1", "x2", "y2"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise AssistError(f"box.{key} must be a number (image pixels), got {value!r}")
        values[key] = float(value)
    x1, y1, x2, y2 = (min(values["x1"], values["x2"]), min(values["y1"], values["y2"]),
                      max(values["x1"], values["x2"]), max(values["y1"], values["y2"]))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise AssistError(f"the box ({x1:g}, {y1:g})-({x2:g}, {y2:g}) has no area")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise AssistError(f"the box ({x1:g}, {y1:g})-({x2:g}, {y2:g}) lies outside the "
                          f"{width}x{height} image")
    box = Box(max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if box.x2 - box.x1 < MIN_BOX_SIDE_PX or box.y2 - box.y1 < MIN_BOX_SIDE_PX:
        raise AssistError(f"the box is too small for the assist (under {MIN_BOX_SIDE_PX} px a side "
                          "inside the image); draw the polygon by hand")
    return box


def polygon_from_box(image: np.ndarray, box: Box, *, max_points: int = MAX_POINTS,
                     work_side: int = WORK_SIDE_PX, iterations: int = ITERATIONS) -> list[list[float]]:
    """The outline of the object inside `box` of an RGB (or grey) uint8 image, as
    [[x, y], ...] in the image's pixels (3 to `max_points` vertices, inside the box).
    Raises AssistError when GrabCut finds no object there."""
    rgb = _as_bgr(image)
    height, width = rgb.shape[:2]
    margin_x = max(MIN_MARGIN_PX, MARGIN_SHARE * (box.x2 - box.x1))
    margin_y = max(MIN_MARGIN_PX, MARGIN_SHARE * (box.y2 - box.y1))
    cx1, cy1 = int(max(0, np.floor(box.x1 - margin_x))), int(max(0, np.floor(box.y1 - margin_y)))
    cx2, cy2 = int(min(width, np.ceil(box.x2 + margin_x))), int(min(height, np.ceil(box.y2 + margin_y)))
    crop = rgb[cy1:cy2, cx1:cx2]
    scale = min(1.0, work_side / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    crop_h, crop_w = crop.shape[:2]
    rx1 = int(np.clip(np.floor((box.x1 - cx1) * scale), 0, crop_w - 1))
    ry1 = int(np.clip(np.floor((box.y1 - cy1) * scale), 0, crop_h - 1))
    rx2 = int(np.clip(np.ceil((box.x2 - cx1) * scale), rx1 + 1, crop_w))
    ry2 = int(np.clip(np.ceil((box.y2 - cy1) * scale), ry1 + 1, crop_h))
    mask = np.zeros((crop_h, crop_w), np.uint8)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    rect = (rx1, ry1, rx2 - rx1, ry2 - ry1)
    if rx1 == 0 and ry1 == 0 and rx2 == crop_w and ry2 == crop_h:
        # A box over the whole image leaves GrabCut no background sample to learn from.
        raise AssistError("the box covers the whole image, so nothing around it shows the background; "
                          "draw a tighter box")
    cv2.grabCut(crop, mask, rect, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_RECT)
    foreground = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(foreground, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise AssistError("found no object inside the box; draw the polygon by hand")
    biggest = max(contours, key=cv2.contourArea)
    if cv2.contourArea(biggest) < 4:
        raise AssistError("found no object inside the box; draw the polygon by hand")
    outline = _simplified(biggest, max_points)
    points = []
    for x, y in outline:
        # Contour points are pixel centres of the work crop: back to original pixels.
        ox = cx1 + (x + 0.5) / scale
        oy = cy1 + (y + 0.5) / scale
        points.append([round(float(np.clip(ox, box.x1, box.x2)), 2), round(float(np.clip(oy, box.y1, box.y2)), 2)])
    return points


def _simplified(contour: np.ndarray, max_points: int) -> np.ndarray:
    """Douglas-Peucker with a tolerance grown until at most `max_points` vertices remain."""
    perimeter = cv2.arcLength(contour, True)
    epsilon = 0.004 * perimeter
    approx = cv2.approxPolyDP(contour, epsilon, True)
    while len(approx) > max_points:
        epsilon *= 1.3
        approx = cv2.approxPolyDP(contour, epsilon, True)
    if len(approx) < 3:
        approx = cv2.approxPolyDP(contour, 0.5, True)
    return approx.reshape(-1, 2).astype(np.float64)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise AssistError("the image must be 8-bit")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    raise AssistError(f"unsupported image shape {image.shape}")
