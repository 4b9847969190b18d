"""YOLO labels: the class names and one .txt file per image (named after the image's stem)
with lines `class x_center y_center width height` (detection) or `class x1 y1 x2 y2 ...`, an
outline of 3 or more points (segmentation), all relative to the image size. The names come
from a data.yaml (ultralytics) or, without one, from a classes.txt with one name a line
(LabelImg, Label Studio's YOLO export, Roboflow's Darknet export as `_darknet.labels` or
`obj.names`). A file with any bad line is refused as a whole."""

from __future__ import annotations

import math
from collections.abc import Iterator

import yaml

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_file

NAME_LIST_FILES = ("classes.txt", "obj.names", "_darknet.labels")


def yolo_records(path: str, *, segmentation: bool = False) -> Iterator[LabelRecord | LabelError]:
    try:
        names = _names_from(path)
    except _NoNames as exc:
        yield LabelError(exc.where, str(exc))
        return
    txt_files = [f for f in label_files(path, (".txt",)) if f[0].rsplit("/", 1)[-1] not in NAME_LIST_FILES]
    in_labels_dir = [f for f in txt_files if "labels" in f[0].split("/")[:-1]]
    for name, full in in_labels_dir or txt_files:
        yield _file_record(name, full, names, segmentation)


class _NoAliasLoader(yaml.SafeLoader):
    """Aliases let a 1 KB file expand to gigabytes (a "billion laughs"); a data.yaml has no
    use for them, so the first one ends the read before anything is expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here", mark)
        return super().compose_node(parent, index)


class _NoNames(ValueError):
    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


def _shallow_first(files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(files, key=lambda item: (item[0].count("/"), item[0]))


def _names_from(path: str) -> list[str]:
    """The class names, from data.yaml (preferred) or a one-name-a-line list."""
    yaml_files = _shallow_first(label_files(path, (".yaml", ".yml")))
    if yaml_files:
        yaml_name, yaml_path = next(
            (f for f in yaml_files if f[0].rsplit("/", 1)[-1] == "data.yaml"), yaml_files[0]
        )
        try:
            return _class_names(yaml.load(read_label_file(yaml_path), Loader=_NoAliasLoader))
        except (ValueError, yaml.YAMLError) as exc:
            raise _NoNames(yaml_name, f"cannot read the class names: {exc}") from None
    lists = _shallow_first(
        [f for f in label_files(path, NAME_LIST_FILES) if f[0].rsplit("/", 1)[-1] in NAME_LIST_FILES]
    )
    if not lists:
        raise _NoNames(
            "data.yaml",
            "YOLO labels need the class names: a data.yaml or a classes.txt (one name a line); none was found",
        )
    list_name, list_path = lists[0]
    try:
        names = [line.strip() for line in read_label_file(list_path).decode("utf-8-sig").splitlines()]
    except (ValueError, UnicodeDecodeError) as exc:
        raise _NoNames(list_name, f"cannot read the class names: {exc}") from None
    names = [n for n in names if n]
    if not names:
        raise _NoNames(list_name, "the class list is empty")
    return names


def _class_names(data) -> list[str]:
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise ValueError("'names' keys must be 0, 1, 2, ...")
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise ValueError("'names' must be a list or an index-to-name mapping")
    # Unquoted digits (names: [0, 1, 2]) are read as numbers; anything else must be text.
    for name in names:
        if not ((isinstance(name, str) and name.strip()) or type(name) is int):
            raise ValueError(f"'names' must be text, one name per class; got {str(name)[:80]!r}")
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
                name, f"line {number}: unknown class index {class_index} (the class list names {len(names)})"
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
