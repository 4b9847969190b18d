"""The one label payload schema, validated on every write.

    detection:       {"boxes": [{"x1": float, "y1": float, "x2": float, "y2": float,
                                 "label": class id}, ...]}
                     pixel coordinates in the original image, x1 < x2, y1 < y2; a box may
                     carry "ignore": true (a region marked not to learn from, COCO iscrowd)
                     or "difficult": true (Pascal VOC), kept only when true
    classification:  {"labels": [class id, ...]}   (one id for single-label projects)

Extra keys on a box ("score", "probs") are dropped: an annotation stores what a person
decided, not what a model said. Validation is Django-free so importers and the API share it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

DETECTION = "detection"
CLASSIFICATION = "classification"


class PayloadError(ValueError):
    """A payload broke the schema; the message says where and how."""


def validate_payload(
    payload: Any,
    *,
    task_type: str,
    class_ids: Iterable[int],
    width: int,
    height: int,
) -> dict:
    """Return the normalized payload or raise PayloadError naming the first problem."""
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object")
    known = set(class_ids)
    if task_type == DETECTION:
        return {"boxes": _validate_boxes(payload, known, width, height)}
    if task_type == CLASSIFICATION:
        return {"labels": _validate_labels(payload, known)}
    raise PayloadError(f"unknown task type {task_type!r}")


def _validate_labels(payload: dict, known: set[int]) -> list[int]:
    labels = payload.get("labels")
    if not isinstance(labels, list):
        raise PayloadError("classification payload needs 'labels': a list of class ids")
    seen: list[int] = []
    for position, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, int):
            raise PayloadError(f"labels[{position}]: class id must be an integer, got {label!r}")
        if label not in known:
            raise PayloadError(f"labels[{position}]: unknown class id {label}")
        if label not in seen:
            seen.append(label)
    return seen


def _validate_boxes(payload: dict, known: set[int], width: int, height: int) -> list[dict]:
    boxes = payload.get("boxes")
    if not isinstance(boxes, list):
        raise PayloadError("detection payload needs 'boxes': a list of boxes")
    clean = []
    for position, box in enumerate(boxes):
        where = f"boxes[{position}]"
        if not isinstance(box, dict):
            raise PayloadError(f"{where}: a box must be an object with x1, y1, x2, y2, label")
        coords = []
        for key in ("x1", "y1", "x2", "y2"):
            value = box.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PayloadError(f"{where}: {key} must be a finite number, got {value!r}")
            coords.append(float(value))
        x1, y1, x2, y2 = coords
        label = box.get("label")
        if isinstance(label, bool) or not isinstance(label, int):
            raise PayloadError(f"{where}: label must be an integer class id, got {label!r}")
        if label not in known:
            raise PayloadError(f"{where}: unknown class id {label}")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise PayloadError(
                f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                f"{width}x{height} image"
            )
        if x2 <= x1 or y2 <= y1:
            raise PayloadError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has no area")
        clean.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label, **_box_flags(box, where)})
    return clean


BOX_FLAGS = ("ignore", "difficult")


def _box_flags(box: dict, where: str) -> dict:
    """The box's flags that are set; a flag must be a boolean."""
    flags = {}
    for flag in BOX_FLAGS:
        value = box.get(flag, False)
        if not isinstance(value, bool):
            raise PayloadError(f"{where}: {flag} must be true or false, got {value!r}")
        if value:
            flags[flag] = True
    return flags
