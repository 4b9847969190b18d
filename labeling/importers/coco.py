"""COCO detection JSON: images, categories and annotations with [x, y, width, height]
boxes in pixels. Each image listed in the file becomes one record with all its boxes (an
image without annotations is a verified image with no objects); an image with any bad
annotation is refused as a whole. An `iscrowd: 1` annotation marks a region to ignore
(a crowd drawn as one outline): it is kept as a box flagged "ignore", never trained on."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_json


def coco_records(path: str) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".json",)):
        yield from _file_records(name, full)


def _file_records(name: str, path: str) -> Iterator[LabelRecord | LabelError]:
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
            boxes=boxes.get(image_id, []),
            size=size if all(isinstance(v, int) for v in size) else None,
        )


def _is_bbox(bbox) -> bool:
    return (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    )
