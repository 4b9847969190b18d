"""COCO JSON: images, categories and annotations. Detection reads each annotation's
[x, y, width, height] box in pixels; an `iscrowd: 1` annotation marks a region to ignore (a
crowd drawn as one outline): it is kept as a box flagged "ignore", never trained on.
Segmentation reads its "segmentation": polygons (flat [x1, y1, x2, y2, ...] lists, the parts
of one instance, meant as their union) or RLE (compressed or not), which becomes the outlines
of its mask (OpenCV contours); there a crowd region is refused, as no instance label. Each
image listed in the file becomes one record with all its objects (an image without
annotations is a verified image with no objects); an image with any bad annotation is
refused as a whole."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from ml.metrics import mask_rings, rle_mask

from ..payloads import union_rings
from .records import LabelError, LabelRecord
from .sources import label_files, read_label_json


def coco_records(path: str, *, segmentation: bool = False) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".json",)):
        yield from _file_records(name, full, segmentation)


def _file_records(name: str, path: str, segmentation: bool) -> Iterator[LabelRecord | LabelError]:
    try:
        data = read_label_json(path)
    except ValueError as exc:
        yield LabelError(name, str(exc))
        return
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        yield LabelError(name, "not a COCO file: needs 'images' and 'categories' lists")
        return
    categories = {}
    for category in data["categories"]:
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("name"), str)
            or "id" not in category
        ):
            yield LabelError(name, f"category {category!r} needs an 'id' and a 'name'")
            return
        categories[category["id"]] = category["name"]

    images = {}
    for image in data["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or "id" not in image:
            yield LabelError(name, f"image entry {str(image)[:80]} needs an 'id' and a 'file_name'")
            continue
        images[image["id"]] = image

    boxes = defaultdict(list)
    polygons = defaultdict(list)
    problems: dict[object, str] = {}
    for position, ann in enumerate(data.get("annotations") or []):
        ann_name = (
            f"annotation {ann.get('id', f'#{position}')}"
            if isinstance(ann, dict)
            else f"annotation #{position}"
        )
        if not isinstance(ann, dict):
            yield LabelError(f"{name}: {ann_name}", "an annotation must be an object")
            continue
        image_id = ann.get("image_id")
        if image_id not in images:
            yield LabelError(
                f"{name}: {ann_name}", f"refers to image id {image_id!r}, which the file does not list"
            )
            continue
        if image_id in problems:
            continue
        category_id = ann.get("category_id")
        bbox = ann.get("bbox")
        if category_id not in categories:
            problems[image_id] = f"{ann_name} has unknown category id {category_id!r}"
        elif segmentation:
            try:
                polygons[image_id].append((categories[category_id], _rings(ann, images[image_id])))
            except ValueError as exc:
                problems[image_id] = f"{ann_name}: {exc}"
        elif not _is_bbox(bbox):
            problems[image_id] = f"{ann_name}: bbox must be [x, y, width, height] numbers, got {bbox!r}"
        else:
            x, y, w, h = (float(v) for v in bbox)
            flags = {"ignore": True} if ann.get("iscrowd") in (1, True) else {}
            boxes[image_id].append((categories[category_id], x, y, x + w, y + h, flags))

    for image_id, image in images.items():
        where = f"{name}: image {image['file_name']!r}"
        if image_id in problems:
            yield LabelError(where, problems[image_id])
            continue
        size = (image.get("width"), image.get("height"))
        yield LabelRecord(
            where=where,
            image_name=image["file_name"],
            boxes=None if segmentation else boxes.get(image_id, []),
            polygons=polygons.get(image_id, []) if segmentation else None,
            size=size if all(isinstance(v, int) for v in size) else None,
        )


def _rings(ann: dict, image: dict) -> list[list[list[float]]]:
    """An annotation's segmentation as rings in pixels; ValueError says what is wrong."""
    if ann.get("iscrowd"):
        raise ValueError("is a crowd region (iscrowd 1), not one instance; remove it or split it into instances")
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        rings = []
        for part in segmentation:
            if (not isinstance(part, list) or len(part) < 6 or len(part) % 2
                    or not all(_is_number(v) for v in part)):
                raise ValueError("each polygon of 'segmentation' must be a flat list of at least 3 x, y pairs")
            rings.append([[float(part[k]), float(part[k + 1])] for k in range(0, len(part), 2)])
        return union_rings(rings)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        return _rle_rings(segmentation, image)
    raise ValueError("needs a 'segmentation': a list of polygons or an RLE object with 'size' and 'counts'")


def _rle_rings(rle: dict, image: dict) -> list[list[list[float]]]:
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError("an RLE segmentation needs 'size': [height, width]")
    if (image.get("height"), image.get("width")) not in ((None, None), tuple(size)):
        raise ValueError(f"the RLE is {size[1]}x{size[0]} but the image entry says "
                         f"{image.get('width')}x{image.get('height')}")
    if not isinstance(rle["counts"], (str, list)):
        raise ValueError("RLE 'counts' must be a string (compressed) or a list of run lengths")
    try:
        mask = rle_mask(rle)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"unreadable RLE: {exc}") from None
    rings = mask_rings(mask)
    if not rings:
        raise ValueError("the RLE mask is empty")
    return rings


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_bbox(bbox) -> bool:
    return (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(_is_number(v) for v in bbox)
    )
