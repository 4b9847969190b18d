"""Labels in a folder tree or a CSV table.

Folder per class: an image's class is the name of the folder it sits in
(`cats/001.jpg` -> "cats"). CSV: a header row naming the image column (image, filename,
file or image_path) and the class column (label or class); with x1, y1, x2, y2 (or xmin,
ymin, xmax, ymax) columns each row is a box, and a row with an empty class is an image
without objects. Rows of the same image are gathered into one record.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_file

IMAGE_COLUMNS = ("image", "filename", "file", "image_path", "file_name")
LABEL_COLUMNS = ("label", "class", "category")
BOX_COLUMNS = (("x1", "y1", "x2", "y2"), ("xmin", "ymin", "xmax", "ymax"))


def folder_records(images: Iterable[tuple[str, int]]) -> Iterator[LabelRecord | LabelError]:
    """Records for (relative path, image id) pairs of the images just imported."""
    for relpath, image_id in images:
        parts = relpath.split("/")
        if len(parts) < 2:
            yield LabelError(relpath, "not inside a class folder (expected <class>/<image>)")
            continue
        yield LabelRecord(where=relpath, image_name=parts[-1], labels=[parts[-2]], image_id=image_id)


def csv_records(path: str, *, detection: bool) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".csv",)):
        yield from _file_records(name, full, detection)


def _pick(header: list[str], choices: tuple[str, ...]) -> str | None:
    return next((c for c in choices if c in header), None)


def _file_records(name: str, path: str, detection: bool) -> Iterator[LabelRecord | LabelError]:
    try:
        reader = csv.DictReader(io.StringIO(read_label_file(path).decode("utf-8-sig"), newline=""))
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        yield LabelError(name, str(exc))
        return
    reader.fieldnames = header
    image_column, label_column = _pick(header, IMAGE_COLUMNS), _pick(header, LABEL_COLUMNS)
    box_columns = next((cols for cols in BOX_COLUMNS if all(c in header for c in cols)), None)
    if image_column is None or label_column is None:
        yield LabelError(
            name,
            f"header must name an image column ({', '.join(IMAGE_COLUMNS)}) and a "
            f"class column ({', '.join(LABEL_COLUMNS)}); found {', '.join(header) or 'none'}",
        )
        return
    if detection and box_columns is None:
        yield LabelError(
            name, "a detection project needs box columns x1, y1, x2, y2 (or xmin, ymin, xmax, ymax)"
        )
        return

    gathered: dict[str, list] = {}
    problems: dict[str, str] = {}
    try:
        for row in reader:
            line = reader.line_num
            image = (row.get(image_column) or "").strip()
            if not image:
                yield LabelError(f"{name}: line {line}", "the image column is empty")
                continue
            entries = gathered.setdefault(image, [])
            label = (row.get(label_column) or "").strip()
            if not detection:
                if label:
                    entries.append(label)
                else:
                    problems.setdefault(image, f"line {line}: the class column is empty")
                continue
            if not label:
                continue
            try:
                coords = [float(row.get(c) or "") for c in box_columns]
                if not all(math.isfinite(v) for v in coords):
                    raise ValueError
            except ValueError:
                problems.setdefault(image, f"line {line}: box coordinates must be numbers")
                continue
            entries.append((label, *coords))
    except csv.Error as exc:
        yield LabelError(name, f"broken CSV: {exc}")
        return

    for image, entries in gathered.items():
        where = f"{name}: image {image!r}"
        if image in problems:
            yield LabelError(where, problems[image])
        elif detection:
            yield LabelRecord(where=where, image_name=image, boxes=entries)
        else:
            yield LabelRecord(where=where, image_name=image, labels=list(dict.fromkeys(entries)))
