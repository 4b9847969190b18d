"""The one label payload schema, validated on every write.

    detection:       {"boxes": [{"x1": float, "y1": float, "x2": float, "y2": float,
                                 "label": class id}, ...]}
                     pixel coordinates in the original image, x1 < x2, y1 < y2; a box may
                     carry "ignore": true (a region marked not to learn from, COCO iscrowd)
                     or "difficult": true (Pascal VOC), kept only when true
    classification:  {"labels": [class id, ...]}   (one id for single-label projects)
    segmentation:    {"polygons": [{"label": class id, "points": [[x, y], ...]}, ...]}
                     one instance per entry; an instance of several rings (split parts,
                     holes) carries "rings": [[[x, y], ...], ...] instead of "points", and
                     its area is what an odd number of rings covers (even-odd rule). Pixel
                     coordinates in the original image; rings are open (the first point is
                     not repeated; a repeated closing point is dropped).

Segmentation checks, per instance: every ring has at least 3 points, each within
CLIP_TOLERANCE of the image (then clipped onto it; farther out is refused), and the shape
has an area. A self-intersecting shape (a bow-tie, crossing rings) is repaired with shapely's
make_valid, keeping its polygonal part, and stored as the repaired rings; a shape with no
area left is refused with the instance's index. A valid shape keeps its points as given.

An image verified to hold no objects (detection or segmentation) has an empty list
("boxes": [] or "polygons": []), stored only when the submit says "empty": true.

Extra keys on a box or polygon ("score", "probs") are dropped: an annotation stores what a
person decided, not what a model said. Validation is Django-free so importers and the API
share it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from ml.metrics import shape_rings

DETECTION = "detection"
CLASSIFICATION = "classification"
SEGMENTATION = "segmentation"

# The list of objects in a payload, by task type (classification has none).
OBJECT_KEYS = {DETECTION: "boxes", SEGMENTATION: "polygons"}

# How far outside the image (pixels) a vertex may lie and still be clipped onto its edge:
# clicks on the border and model contours land a fraction of a pixel out.
CLIP_TOLERANCE = 0.5


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
    if task_type == SEGMENTATION:
        return {"polygons": _validate_polygons(payload, known, width, height)}
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


def payload_objects(payload: dict | None) -> list[dict]:
    """The boxes or polygons of a detection or segmentation payload ([] for classification)."""
    payload = payload or {}
    return payload.get("boxes") or payload.get("polygons") or []


def payload_class_ids(payload: dict | None) -> list[int]:
    """Every class id a payload names: its labels, or the label of each box or polygon."""
    payload = payload or {}
    return list(payload.get("labels", [])) or [item["label"] for item in payload_objects(payload)]


def instance_rings(instance: dict) -> list[list[list[float]]]:
    """The rings of a stored polygon instance, whichever of "points" or "rings" it uses."""
    return instance["rings"] if "rings" in instance else [instance["points"]]


def instance_shape(instance: dict) -> BaseGeometry:
    """The area of a stored instance as a shapely geometry (even-odd over its rings)."""
    return _even_odd([Polygon(ring) for ring in instance_rings(instance)])


def shape_instance(shape: BaseGeometry, label: int) -> dict | None:
    """A stored instance for a (valid) shapely shape: "points" for one ring, else "rings";
    None when the shape has no polygonal area."""
    rings = shape_rings(shape)
    if not rings:
        return None
    return {"label": label, "points": rings[0]} if len(rings) == 1 else {"label": label, "rings": rings}


def union_rings(rings: list[list[list[float]]]) -> list[list[list[float]]]:
    """Rings whose parts are meant as a union (COCO's polygons), as even-odd rings: kept as
    given when no two parts overlap or touch, else the rings of their union."""
    parts = [shapely.make_valid(Polygon(ring)) for ring in rings]
    if not any(parts[i].intersects(parts[j]) for i in range(len(parts)) for j in range(i + 1, len(parts))):
        return rings
    union = shape_instance(shapely.unary_union(parts), label=0)
    return instance_rings(union) if union is not None else rings


def segmentation_clipped(payload: dict, width: int, height: int) -> dict:
    """A model's polygons as a label: each instance cut to the image, without scores;
    instances with no area inside the image are dropped."""
    frame = shapely.box(0, 0, width, height)
    polygons = []
    for instance in payload.get("polygons", []):
        clipped = shape_instance(shapely.make_valid(instance_shape(instance)).intersection(frame),
                                 instance["label"])
        if clipped is not None:
            polygons.append(clipped)
    return {"polygons": polygons}


def _even_odd(parts: list[Polygon]) -> BaseGeometry:
    shape: BaseGeometry = parts[0]
    for part in parts[1:]:
        shape = shape.symmetric_difference(part)
    return shape


def _validate_polygons(payload: dict, known: set[int], width: int, height: int) -> list[dict]:
    polygons = payload.get("polygons")
    if not isinstance(polygons, list):
        raise PayloadError("segmentation payload needs 'polygons': a list of instances")
    return [_validate_instance(instance, f"polygons[{position}]", known, width, height)
            for position, instance in enumerate(polygons)]


def _validate_instance(instance: Any, where: str, known: set[int], width: int, height: int) -> dict:
    if not isinstance(instance, dict):
        raise PayloadError(f"{where}: an instance must be an object with label and points (or rings)")
    label = instance.get("label")
    if isinstance(label, bool) or not isinstance(label, int):
        raise PayloadError(f"{where}: label must be an integer class id, got {label!r}")
    if label not in known:
        raise PayloadError(f"{where}: unknown class id {label}")
    if ("points" in instance) == ("rings" in instance):
        raise PayloadError(f"{where}: an instance needs either 'points' (one ring) or 'rings' (several)")
    if "points" in instance:
        raw_rings, names = [instance["points"]], [f"{where}.points"]
    else:
        raw_rings = instance["rings"]
        if not isinstance(raw_rings, list) or not raw_rings:
            raise PayloadError(f"{where}: 'rings' must be a non-empty list of rings")
        names = [f"{where}.rings[{index}]" for index in range(len(raw_rings))]
    rings = [_validate_ring(ring, name, width, height) for ring, name in zip(raw_rings, names, strict=True)]
    parts = [Polygon(ring) for ring in rings]
    if _kept_as_given(parts):
        return {"label": label, "points": rings[0]} if "points" in instance else {"label": label, "rings": rings}
    repaired_parts = [shapely.make_valid(part) for part in parts]
    for part, name in zip(repaired_parts, names, strict=True):
        if part.area <= 0:
            raise PayloadError(f"{name}: the ring encloses no area (its points lie on one line)")
    repaired = shape_instance(shapely.make_valid(_even_odd(repaired_parts)), label)
    if repaired is None:
        raise PayloadError(f"{where}: the shape crosses itself and has no area once repaired")
    return repaired


def _kept_as_given(parts: list[Polygon]) -> bool:
    """True when the rings need no repair: each is simple with an area and no two
    boundaries meet."""
    if not all(part.is_valid and part.area > 0 for part in parts):
        return False
    return not any(parts[i].exterior.intersects(parts[j].exterior)
                   for i in range(len(parts)) for j in range(i + 1, len(parts)))


def _validate_ring(ring: Any, where: str, width: int, height: int) -> list[list[float]]:
    if not isinstance(ring, list):
        raise PayloadError(f"{where}: a ring must be a list of [x, y] points")
    points = []
    for index, point in enumerate(ring):
        if (not isinstance(point, (list, tuple)) or len(point) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                       for v in point)):
            raise PayloadError(f"{where}[{index}]: a point must be [x, y] with finite numbers, got {point!r}")
        x, y = float(point[0]), float(point[1])
        if not (-CLIP_TOLERANCE <= x <= width + CLIP_TOLERANCE and -CLIP_TOLERANCE <= y <= height + CLIP_TOLERANCE):
            raise PayloadError(f"{where}[{index}]: point ({x:g}, {y:g}) lies outside the {width}x{height} image")
        points.append([min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))])
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(points) < 3:
        raise PayloadError(f"{where}: a ring needs at least 3 points, got {len(points)}")
    return points
