"""CVAT for images 1.1 XML: annotations.xml with the labels in <meta> and one <image> per
labeled image holding <box> (pixels, 0-based edges, as CVAT writes them) or <tag> (the
image's classes); images/. CVAT's "Upload annotations" in CVAT for images 1.1 reads it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .items import ExportItem


def cvat_write(items, classes, sink, *, include_images: bool, on_item, detection: bool) -> None:
    names = {c.pk: c.name for c in classes}
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = "VISION export"
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for c in classes:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = c.name
        ET.SubElement(label, "color").text = c.color
        ET.SubElement(label, "type").text = "rectangle" if detection else "tag"
        ET.SubElement(label, "attributes")
    for position, item in enumerate(items):
        item: ExportItem
        image = item.image
        element = ET.SubElement(
            root,
            "image",
            id=str(position),
            name=f"images/{item.file_name}",
            width=str(image.width),
            height=str(image.height),
            subset=item.split,
        )
        if detection:
            for box in item.payload.get("boxes", []):
                if box["label"] in names:
                    ET.SubElement(
                        element,
                        "box",
                        label=names[box["label"]],
                        source="manual",
                        occluded="0",
                        xtl=f"{box['x1']:.10g}",
                        ytl=f"{box['y1']:.10g}",
                        xbr=f"{box['x2']:.10g}",
                        ybr=f"{box['y2']:.10g}",
                        z_order="0",
                    )
        else:
            for label_id in item.payload.get("labels", []):
                if label_id in names:
                    ET.SubElement(element, "tag", label=names[label_id], source="manual")
        if include_images:
            sink.write_stored(f"images/{item.file_name}", item.stored_name)
        on_item()
    ET.indent(root)
    sink.write_text("annotations.xml", '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
