"""YOLO labels: a data.yaml with the class names and one .txt file per image (named after
the image's stem) with lines `class x_center y_center width height` (detection) or
`class x1 y1 x2 y2 ...`, an outline of 3 or more points (segmentation), all relative to
the image size. A file with any bad line is refused as a whole."""

from __future__ import annotations

import math
from collections.abc import Iterator

import yaml

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_file


def yolo_records(path: str, *, segmentation: bool = False) -> Iterator[LabelRecord | LabelError]:
    yaml_files = sorted(label_files(path, (".yaml", ".yml")), key=lambda item: (item[0].count("/"), item[0]))
    if not yaml_files:
        yield LabelError("data.yaml", "YOLO labels need a data.yaml with the class names; none was found")
        return
    yaml_name, yaml_path = next(
        (f for f in yaml_files if f[0].rsplit("/", 1)[-1] == "data.yaml"), yaml_files[0]
    )
    try:
        names = _class_names(yaml.safe_load(read_label_file(yaml_path)))
    except (ValueError, yaml.YAMLError) as exc:
        yield LabelError(yaml_name, f"cannot read the class names: {exc}")
        return
    txt_files = [f for f in label_files(path, (".txt",)) if f[0].rsplit("/", 1)[-1] != "classes.txt"]
    in_labels_dir = [f for f in txt_files if "labels" in f[0].split("/")[:-1]]
    for name, full in in_labels_dir or txt_files:
        yield _file_record(name, full, names, segmentation)


def _class_names(data) -> list[str]:
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise ValueError("'names' keys must be 0, 1, 2, ...")
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise ValueError("'names' must be a list or an index-to-name mapping")
    return [str(n) for n in names]


def _file_record(name: str, path: str, names: list[str], segmentation: bool) -> LabelRecord | LabelError:
    try:
        text = read_label_file(path).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        return LabelError(name, str(exc))
    objects: list = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split()
        if segmentation and (len(columns) < 7 or len(columns) % 2 == 0):
            expected = "expected a class and 3 or more x y pairs (class x1 y1 x2 y2 x3 y3 ...)"
            return LabelError(name, f"line {number}: {expected}, got {len(columns)} columns")
        if not segmentation and len(columns) != 5:
            expected = "expected 5 columns (class x_center y_center width height)"
            return LabelError(name, f"line {number}: {expected}, got {len(columns)}")
        try:
            class_index = int(columns[0])
            values = [float(v) for v in columns[1:]]
        except ValueError:
            return LabelError(
                name, f"line {number}: class must be an integer and the rest numbers: {line.strip()!r}"
            )
        if not 0 <= class_index < len(names):
            return LabelError(
                name, f"line {number}: unknown class index {class_index} (data.yaml names {len(names)})"
            )
        bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
        if bad:
            return LabelError(name, f"line {number}: value {bad[0]:g} is outside [0, 1]")
        if segmentation:
            objects.append((names[class_index], [[values[k], values[k + 1]] for k in range(0, len(values), 2)]))
        else:
            objects.append((names[class_index], *values))
    stem = name.rsplit("/", 1)[-1][: -len(".txt")]
    if segmentation:
        return LabelRecord(where=name, image_name=stem, polygons=[(category, [ring]) for category, ring in objects],
                           normalized=True, match_stem=True)
    return LabelRecord(where=name, image_name=stem, boxes=objects, normalized=True, match_stem=True)
