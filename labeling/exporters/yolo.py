"""YOLO datasets that `yolo train data=<folder>/data.yaml` accepts as they are.

Detection: data.yaml, images/<split>/ and labels/<split>/<stem>.txt with normalized
`class cx cy w h` lines. Segmentation: the same layout with `class x1 y1 x2 y2 ...` lines,
one per instance; an instance of several rings (parts, holes) becomes one outline joined
at the rings' closest points by zero-width seams (ultralytics' merge_multi_segment, as its
own COCO converter does), so its even-odd area is kept. Classification:
<split>/<class>/<image> folders (ultralytics' classify layout). data.yaml has no `path`, so ultralytics resolves the split folders
next to it; with no validation images, val points at train.
"""

from __future__ import annotations

import yaml

from ml.metrics import instance_outline

from ..payloads import instance_rings


def yolo_write(items, classes, sink, *, include_images: bool, on_item) -> None:
    index = {c.pk: n for n, c in enumerate(classes)}
    splits = set()
    for item in items:
        image = item.image
        lines = []
        for box in item.payload.get("boxes", []):
            if box["label"] not in index or box.get("ignore"):
                continue  # YOLO has no ignore regions: a trainer would learn them as objects
            cx = (box["x1"] + box["x2"]) / 2 / image.width
            cy = (box["y1"] + box["y2"]) / 2 / image.height
            w = (box["x2"] - box["x1"]) / image.width
            h = (box["y2"] - box["y1"]) / image.height
            lines.append(f"{index[box['label']]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        for instance in item.payload.get("polygons", []):
            if instance["label"] in index:
                lines.append(yolo_segment_line(index[instance["label"]], instance_rings(instance),
                                               image.width, image.height))
        sink.write_text(f"labels/{item.split}/{item.stem}.txt", "".join(lines))
        if include_images:
            sink.write_stored(f"images/{item.split}/{item.file_name}", item.stored_name)
        splits.add(item.split)
        on_item()
    data = {
        "train": "images/train",
        "val": "images/val" if "val" in splits else "images/train",
        "nc": len(classes),
        "names": {n: c.name for n, c in enumerate(classes)},
    }
    sink.write_text("data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def yolo_segment_line(class_index: int, rings, width: int, height: int) -> str:
    """One instance as a YOLO segmentation line, coordinates normalized to the image."""
    values = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in instance_outline(rings))
    return f"{class_index} {values}\n"


def yolo_classify_write(items, classes, sink, *, include_images: bool, on_item) -> None:
    """The folder names are the labels, so the images are always written."""
    names = {c.pk: c.name for c in classes}
    for item in items:
        labels = [names[label] for label in item.payload.get("labels", []) if label in names]
        if labels:  # single-label layout: an image sits in the folder of its first class
            sink.write_stored(f"{item.split}/{labels[0]}/{item.file_name}", item.stored_name)
        on_item()
