"""Pascal VOC: Annotations/<stem>.xml, JPEGImages/ and ImageSets/Main/<split>.txt.
Box corners are written in pixels as stored (no +1 shift), as the importer reads them."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def voc_write(items, classes, sink, *, include_images: bool, on_item) -> None:
    names = {c.pk: c.name for c in classes}
    sets: dict[str, list[str]] = {}
    for item in items:
        image = item.image
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "JPEGImages"
        ET.SubElement(root, "filename").text = item.file_name
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(image.width)
        ET.SubElement(size, "height").text = str(image.height)
        ET.SubElement(size, "depth").text = "3"
        for box in item.payload.get("boxes", []):
            if box["label"] not in names:
                continue
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = names[box["label"]]
            ET.SubElement(obj, "difficult").text = "0"
            bndbox = ET.SubElement(obj, "bndbox")
            for key, value in zip(
                ("xmin", "ymin", "xmax", "ymax"), (box["x1"], box["y1"], box["x2"], box["y2"])
            ):
                ET.SubElement(bndbox, key).text = f"{value:g}"
        ET.indent(root)
        sink.write_text(f"Annotations/{item.stem}.xml", ET.tostring(root, encoding="unicode") + "\n")
        if include_images:
            sink.write_stored(f"JPEGImages/{item.file_name}", image.file.name)
        sets.setdefault(item.split, []).append(item.stem)
        on_item()
    for split, stems in sets.items():
        sink.write_text(f"ImageSets/Main/{split}.txt", "".join(f"{s}\n" for s in stems))
