"""Labels made elsewhere, as parsed records, and how they become import annotations.

Parsers (coco, yolo, voc, classification) yield LabelRecord for each image's labels and
LabelError for what they cannot read. labels_apply matches each record to a project image
by file name and its categories to project classes, then writes one import annotation per
record: all of an image's labels land together or not at all.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from core.models import Image, Project

from ..models import AnnotationState
from ..payloads import PayloadError
from ..services import annotation_import_create, label_class_create

# Tools round box edges differently; an edge this close outside the image is clipped.
EDGE_TOLERANCE_PX = 1.0


@dataclass
class LabelRecord:
    where: str  # names the label file (and the entry in it) for messages
    image_name: str  # the image's file name as the label file gives it
    # (category, x1, y1, x2, y2), optionally followed by the box's flags ({"ignore": True})
    boxes: list[tuple] | None = None
    labels: list[str] | None = None  # classification: category names
    # segmentation: (category, rings), each ring [[x, y], ...] in pixels or, normalized, in 0-1
    polygons: list[tuple[str, list[list[list[float]]]]] | None = None
    normalized: bool = False  # boxes are (category, cx, cy, w, h) in 0-1 (YOLO), polygons 0-1
    match_stem: bool = False  # the file name is given without its suffix (YOLO)
    size: tuple[int, int] | None = None  # (width, height) the label file states, when it does
    image_id: int | None = None  # already known (class folders)
    fallback_name: str = ""  # tried when image_name matches no image (Label Studio's upload prefix)


@dataclass
class LabelError:
    where: str
    error: str

    def as_item(self) -> dict:
        return {"name": self.where, "status": "error", "error": self.error}


@dataclass
class LabelOutcome:
    created: int = 0
    unchanged: int = 0  # the image's current label already said the same
    kept_as_opinion: int = 0  # differed from a person's label: stored beside it, not over it
    errors: list[LabelError] = field(default_factory=list)


class _Problem(ValueError):
    pass


def _stem(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/"))
    dot = base.rfind(".")
    return base[:dot] if dot > 0 else base


class _ImageIndex:
    """Project images by base name and by stem; images of the current batch win ties."""

    def __init__(self, project: Project, preferred_ids: set[int]):
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.by_stem: dict[str, list[int]] = defaultdict(list)
        self.preferred = preferred_ids
        rows = Image.objects.filter(project=project).values_list("id", "original_name")
        for image_id, original_name in rows.iterator(chunk_size=5000):
            self.by_name[original_name].append(image_id)
            self.by_stem[_stem(original_name)].append(image_id)

    def find(self, record: LabelRecord) -> int:
        base = posixpath.basename(record.image_name.replace("\\", "/"))
        if record.match_stem:
            candidates = self.by_stem.get(base, [])
        else:
            # A label file may name the original of a converted image (a.tif for a.png).
            candidates = self.by_name.get(base) or self.by_stem.get(_stem(base), [])
        if not candidates and record.fallback_name:
            fallback = posixpath.basename(record.fallback_name)
            candidates = self.by_name.get(fallback) or self.by_stem.get(_stem(fallback), [])
        if not candidates:
            raise _Problem(f"image {base!r} is not in the project (import the image first)")
        if len(candidates) > 1:
            preferred = [c for c in candidates if c in self.preferred]
            if len(preferred) != 1:
                raise _Problem(f"{len(candidates)} project images are named {base!r}; rename them to match")
            return preferred[0]
        return candidates[0]


class _ClassResolver:
    def __init__(self, project: Project, class_map: dict[str, str], create_classes: bool):
        self.project = project
        self.class_map = class_map
        self.create = create_classes
        self.ids = dict(project.label_classes.values_list("name", "id"))

    def find(self, category: str) -> int:
        target = self.class_map.get(category, category)
        if target in self.ids:
            return self.ids[target]
        if category in self.class_map and not self.create:
            raise _Problem(
                f"category {category!r} is mapped to {target!r}, which is not a class of this project"
            )
        if not self.create:
            raise _Problem(
                f"unknown category {category!r}; map it to a project class or allow creating classes"
            )
        self.ids[target] = label_class_create(project=self.project, name=target).pk
        return self.ids[target]


def labels_apply(
    *,
    project: Project,
    records: Iterable[LabelRecord | LabelError],
    class_map: dict[str, str] | None = None,
    create_classes: bool = False,
    author=None,
    preferred_image_ids: Iterable[int] = (),
    on_record: Callable[[], None] | None = None,
    replace: bool = False,
) -> LabelOutcome:
    """Write one import annotation per record; collect an error per record that fails.
    on_record is called after each record (long label imports keep their job alive).
    A record that differs from a person's label is kept as an extra opinion unless
    replace is set (see annotation_import_create)."""
    outcome = LabelOutcome()
    index = None
    classes = _ClassResolver(project, class_map or {}, create_classes)
    for record in records:
        if on_record:
            on_record()
        if isinstance(record, LabelError):
            outcome.errors.append(record)
            continue
        if index is None and record.image_id is None:
            index = _ImageIndex(project, set(preferred_image_ids))
        known_classes = dict(classes.ids)
        try:
            created = _apply_one(project, record, index, classes, author, replace)
        except (_Problem, PayloadError, ValidationError) as exc:
            classes.ids = known_classes  # a class created for this record was rolled back with it
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            outcome.errors.append(LabelError(record.where, message))
        else:
            if created is None:
                outcome.unchanged += 1
            elif created.state == AnnotationState.EXTRA_OPINION:
                outcome.kept_as_opinion += 1
            else:
                outcome.created += 1
    return outcome


@transaction.atomic
def _apply_one(project, record: LabelRecord, index, classes: _ClassResolver, author, replace: bool):
    """Record the labels; None when the image's current label says the same already."""
    image_id = record.image_id if record.image_id is not None else index.find(record)
    image = Image.objects.select_related("project").get(pk=image_id)
    if record.size is not None and record.size != (image.width, image.height):
        raise _Problem(
            f"the label file gives the size of {image.original_name!r} as {record.size[0]}x{record.size[1]}, "
            f"but the image is {image.width}x{image.height} (a different image, or an EXIF turn)"
        )
    if record.labels is not None:
        payload = {"labels": [classes.find(name) for name in record.labels]}
    elif record.polygons is not None:
        payload = {"polygons": [_polygon(polygon, record.normalized, image, classes) for polygon in record.polygons]}
    else:
        payload = {"boxes": [_box(box, record.normalized, image, classes) for box in record.boxes or []]}
    # None: imported before, or labeled the same since; nothing new to record.
    return annotation_import_create(
        image=image, payload=payload, author=author, class_ids=list(classes.ids.values()), replace=replace
    )


def _box(box, normalized: bool, image: Image, classes: _ClassResolver) -> dict:
    category, a, b, c, d, *flags = box
    if normalized:
        cx, cy, w, h = a * image.width, b * image.height, c * image.width, d * image.height
        a, b, c, d = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    x1, y1, x2, y2 = (
        _clip(a, image.width),
        _clip(b, image.height),
        _clip(c, image.width),
        _clip(d, image.height),
    )
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": classes.find(category), **(flags[0] if flags else {})}


def _polygon(polygon, normalized: bool, image: Image, classes: _ClassResolver) -> dict:
    category, rings = polygon
    scale_x, scale_y = (image.width, image.height) if normalized else (1, 1)
    rings = [[[_clip(x * scale_x, image.width), _clip(y * scale_y, image.height)] for x, y in ring]
             for ring in rings]
    label = classes.find(category)
    return {"label": label, "points": rings[0]} if len(rings) == 1 else {"label": label, "rings": rings}


def _clip(value: float, limit: int) -> float:
    if -EDGE_TOLERANCE_PX <= value < 0:
        return 0.0
    if limit < value <= limit + EDGE_TOLERANCE_PX:
        return float(limit)
    return value
