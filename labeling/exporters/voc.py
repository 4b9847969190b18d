"""Pascal VOC: Annotations/<stem>.xml, JPEGImages/<stem>.jpg and ImageSets/Main/<split>.txt,
the layout torchvision's VOCDetection reads. VOC pixel coordinates are 1-based: a box from
x1 to x2 in our 0-based, edge-to-edge pixels covers the pixels numbered x1 + 1 to x2, so
xmin = x1 + 1 and xmax = x2 (the importer undoes it). Images that are not JPEG are
converted, since the layout names every image .jpg."""

from __future__ import annotations

import io
import posixpath
import xml.etree.ElementTree as ET

from django.core.files.storage import default_storage
from PIL import Image as PILImage

JPEG_SUFFIXES = (".jpg", ".jpeg")


def voc_write(items, classes, sink, *, include_images: bool, on_item) -> None:
    names = {c.pk: c.name for c in classes}
    sets: dict[str, list[str]] = {}
    for item in items:
        image = item.image
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "JPEGImages"
        ET.SubElement(root, "filename").text = f"{item.stem}.jpg"
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(image.width)
        ET.SubElement(size, "height").text = str(image.height)
        ET.SubElement(size, "depth").text = "3"
        for box in item.payload.get("boxes", []):
            if box["label"] not in names:
                continue
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = names[box["label"]]
            ET.SubElement(obj, "truncated").text = "0"
            ET.SubElement(obj, "difficult").text = "1" if box.get("difficult") else "0"
            bndbox = ET.SubElement(obj, "bndbox")
            for key, value in zip(
                ("xmin", "ymin", "xmax", "ymax"), (box["x1"] + 1, box["y1"] + 1, box["x2"], box["y2"])
            ):
                ET.SubElement(bndbox, key).text = f"{value:.10g}"
        ET.indent(root)
        sink.write_text(f"Annotations/{item.stem}.xml", ET.tostring(root, encoding="unicode") + "\n")
        if include_images:
            _write_jpeg(sink, f"JPEGImages/{item.stem}.jpg", item.stored_name)
        sets.setdefault(item.split, []).append(item.stem)
        on_item()
    for split, stems in sets.items():
        sink.write_text(f"ImageSets/Main/{split}.txt", "".join(f"{s}\n" for s in stems))


def _write_jpeg(sink, arcname: str, storage_name: str) -> None:
    """Copy a JPEG as it is; convert any other image to one."""
    if posixpath.splitext(storage_name)[1].lower() in JPEG_SUFFIXES:
        sink.write_stored(arcname, storage_name)
        return
    with default_storage.open(storage_name, "rb") as source, PILImage.open(source) as picture:
        out = io.BytesIO()
        picture.convert("RGB").save(out, "JPEG", quality=95)
    sink.write_bytes(arcname, out.getvalue())
