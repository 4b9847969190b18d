"""COCO JSON: annotations.json (each image carries its split) and images/.

Detection: one annotation per box, "bbox" [x, y, width, height]; ignore regions are written
as `iscrowd: 1` annotations, as COCO marks them. Segmentation: one annotation per instance
with its "bbox" and "area" and a "segmentation": polygons (a flat [x1, y1, x2, y2, ...] list
per part) when the instance has no holes, else COCO's compressed RLE of its even-odd mask
(COCO polygons cannot hold holes)."""

from __future__ import annotations

import json

import shapely

from ml.metrics import rings_rle

from ..payloads import instance_rings, instance_shape
from .items import ExportItem


def coco_write(items, classes, sink, *, include_images: bool, on_item) -> None:
    known = {c.pk for c in classes}
    images, annotations = [], []
    for item in items:
        item: ExportItem
        image = item.image
        images.append(
            {
                "id": image.pk,
                "file_name": item.file_name,
                "width": image.width,
                "height": image.height,
                "split": item.split,
            }
        )
        for box in item.payload.get("boxes", []):
            if box["label"] not in known:
                continue
            w, h = box["x2"] - box["x1"], box["y2"] - box["y1"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image.pk,
                    "category_id": box["label"],
                    "bbox": [box["x1"], box["y1"], w, h],
                    "area": w * h,
                    "iscrowd": 1 if box.get("ignore") else 0,
                }
            )
        for instance in item.payload.get("polygons", []):
            if instance["label"] in known:
                annotations.append({"id": len(annotations) + 1, "image_id": image.pk,
                                    **_segment(instance, image.width, image.height)})
        if include_images:
            sink.write_stored(f"images/{item.file_name}", item.stored_name)
        on_item()
    parents = {c.pk: c.name for c in classes}
    categories = [
        {"id": c.pk, "name": c.name, "supercategory": parents.get(c.parent_id, "")} for c in classes
    ]
    document = {
        "info": {"description": "VISION export"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    sink.write_text("annotations.json", json.dumps(document))


def _segment(instance: dict, width: int, height: int) -> dict:
    shape = instance_shape(instance)
    x1, y1, x2, y2 = shape.bounds
    parts = shapely.get_parts(shape)
    if any(len(part.interiors) for part in parts):
        segmentation: list | dict = rings_rle(instance_rings(instance), height, width)
    elif "points" in instance:
        segmentation = [[v for point in instance["points"] for v in point]]
    else:
        segmentation = [[v for point in ring for v in point] for ring in instance["rings"]]
    return {"category_id": instance["label"], "segmentation": segmentation, "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": shape.area, "iscrowd": 0}
