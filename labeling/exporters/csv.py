"""CSV: labels.csv with one row per box (detection: image, split, label, x1, y1, x2, y2;
an image without objects has one row with an empty label) or per class (classification:
image, split, label), and images/. The label importer reads this file back."""

from __future__ import annotations

import csv
import io


def csv_write(items, classes, sink, *, include_images: bool, on_item, detection: bool) -> None:
    names = {c.pk: c.name for c in classes}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["image", "split", "label", "x1", "y1", "x2", "y2"] if detection else ["image", "split", "label"]
    )
    for item in items:
        if detection:
            boxes = [b for b in item.payload.get("boxes", []) if b["label"] in names]
            for box in boxes:
                writer.writerow(
                    [
                        item.file_name,
                        item.split,
                        names[box["label"]],
                        f"{box['x1']:g}",
                        f"{box['y1']:g}",
                        f"{box['x2']:g}",
                        f"{box['y2']:g}",
                    ]
                )
            if not boxes:
                writer.writerow([item.file_name, item.split, "", "", "", "", ""])
        else:
            for label in item.payload.get("labels", []):
                if label in names:
                    writer.writerow([item.file_name, item.split, names[label]])
        if include_images:
            sink.write_stored(f"images/{item.file_name}", item.stored_name)
        on_item()
    sink.write_text("labels.csv", out.getvalue())
