"""Label Studio JSON export (the full "JSON" format, not JSON-MIN): a list of tasks, each
with `data` naming the image and `annotations` and `predictions` lists whose `result`
holds regions. Boxes are `rectanglelabels` with x, y, width, height in percent of the
image; classes are `choices`.

Each task becomes one record from its latest annotation that was not cancelled.
Predictions are a model's guesses, never a verified label: a task with predictions only
is reported and left unlabeled. A region of a kind the project cannot hold (polygons,
rotated boxes, ...) refuses its task, since dropping it would leave a wrong label.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlparse

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_json

# Label Studio prefixes uploaded files with 8 hex digits: /data/upload/3/1a2b3c4d-cat.jpg
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def labelstudio_records(path: str, *, detection: bool) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".json",)):
        yield from _file_records(name, full, detection)


def image_name_from_url(url: str) -> str:
    """The file name a task's image URL points at (local-files `?d=`, uploads, http, s3)."""
    parsed = urlparse(url)
    local = parse_qs(parsed.query).get("d")
    return posixpath.basename(unquote(local[0] if local else parsed.path))


def _file_records(name: str, path: str, detection: bool) -> Iterator[LabelRecord | LabelError]:
    try:
        tasks = read_label_json(path)
    except ValueError as exc:
        yield LabelError(name, str(exc))
        return
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
        yield LabelError(name, "not a Label Studio export: expected a list of tasks, each with 'data'")
        return
    for position, task in enumerate(tasks):
        yield _task_record(f"{name}: task {task.get('id', f'#{position}')}", task, detection)


def _task_record(where: str, task: dict, detection: bool) -> LabelRecord | LabelError:
    data = task.get("data")
    url = data.get("image") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url:
        return LabelError(where, "data.image is missing: the task names no image")
    image_name = image_name_from_url(url)
    where = f"{where} ({image_name})"
    annotations = [
        a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")
    ]
    if not annotations:
        if task.get("predictions"):
            return LabelError(
                where, "has predictions only (a model's guesses), no annotation; not imported as a label"
            )
        return LabelError(where, "has no annotation that was not cancelled")
    result = annotations[-1].get("result")
    if not isinstance(result, list):
        return LabelError(where, "the annotation's result must be a list of regions")
    record = LabelRecord(
        where=where,
        image_name=image_name,
        fallback_name=_UPLOAD_PREFIX.sub("", image_name),
    )
    try:
        if detection:
            record.boxes, record.size = _boxes(result)
            record.normalized = True
        else:
            record.labels = _choices(result)
    except ValueError as exc:
        return LabelError(record.where, str(exc))
    return record


def _boxes(result: list) -> tuple[list[tuple], tuple[int, int] | None]:
    """(category, cx, cy, w, h) in 0-1 per rectangle, and the size the regions state."""
    boxes, size = [], None
    for position, region in enumerate(result):
        where = f"region {position + 1}"
        kind = region.get("type") if isinstance(region, dict) else None
        if kind != "rectanglelabels":
            raise ValueError(f"{where} is {kind!r}; a detection project holds rectanglelabels only")
        value = region.get("value") or {}
        if value.get("rotation"):
            raise ValueError(f"{where} is rotated by {value['rotation']} degrees; only upright boxes fit")
        labels = value.get("rectanglelabels")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            raise ValueError(f"{where}: rectanglelabels must name exactly one class, got {labels!r}")
        coords = [value.get(k) for k in ("x", "y", "width", "height")]
        if not all(_is_number(v) for v in coords):
            raise ValueError(f"{where}: x, y, width, height must be numbers, got {coords}")
        x, y, w, h = (float(v) / 100 for v in coords)
        boxes.append((labels[0], x + w / 2, y + h / 2, w, h))
        stated = (region.get("original_width"), region.get("original_height"))
        if all(isinstance(v, int) for v in stated):
            size = (int(stated[0]), int(stated[1]))
    return boxes, size


def _choices(result: list) -> list[str]:
    chosen: list[str] = []
    for position, region in enumerate(result):
        kind = region.get("type") if isinstance(region, dict) else None
        if kind != "choices":
            raise ValueError(f"region {position + 1} is {kind!r}; a classification project holds choices only")
        choices = (region.get("value") or {}).get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"region {position + 1}: choices must be a list of class names")
        chosen.extend(choices)
    if not chosen:
        raise ValueError("the annotation chooses no class")
    return list(dict.fromkeys(chosen))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
