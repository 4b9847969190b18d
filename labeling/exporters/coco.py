"""COCO detection JSON: annotations.json (each image carries its split) and images/.
Ignore regions are written as `iscrowd: 1` annotations, as COCO marks them."""

from __future__ import annotations

import json

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
        if include_images:
            sink.write_stored(f"images/{item.file_name}", image.file.name)
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
