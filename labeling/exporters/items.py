"""The images an export holds: each labeled image once, with its current label."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import F

from core.models import Image, LabelClass, Project, Split

from ..selectors import image_latest_labels

# The split names other tools use.
SPLIT_NAMES = {Split.TRAIN: "train", Split.VALIDATION: "val", Split.UNASSIGNED: "unassigned"}


@dataclass
class ExportItem:
    image: Image
    payload: dict
    file_name: str  # unique within the export; the original name where possible
    split: str  # train, val or unassigned
    stored_name: str  # the stored file to write: the served (blurred) one, or a kept original

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.file_name)[0]


def export_classes(project: Project) -> list[LabelClass]:
    """Classes in export order: their index is the YOLO class index."""
    return list(project.label_classes.order_by("order", "id"))


def export_items(project: Project, *, originals: bool = False) -> Iterator[ExportItem]:
    """The labeled images to export. ``originals`` (an admin's choice, logged by the caller):
    a blurred image's kept original instead of its render."""
    used: set[str] = set()  # lower-cased stems
    annotations = (
        image_latest_labels(project)
        .exclude(image__blur__state="pending")  # the sharp original until its privacy blur is done
        .select_related("image")
        .only(
            "payload",
            "image__id",
            "image__file",
            "image__original_name",
            "image__split",
            "image__width",
            "image__height",
            "image__project",
        )
    )
    if originals:
        annotations = annotations.annotate(kept_original=F("image__blur__original"))
    for annotation in annotations.iterator(chunk_size=500):
        image = annotation.image
        stem = posixpath.splitext(image.original_name)[0] or f"image_{image.pk}"
        stored = (originals and getattr(annotation, "kept_original", None)) or image.file.name
        suffix = posixpath.splitext(stored)[1]
        # Label files are named by stem, so stems must be unique (a.jpg and a.png clash).
        if stem.lower() in used:
            stem = f"{stem}_{image.pk}"
        used.add(stem.lower())
        yield ExportItem(image, annotation.payload, f"{stem}{suffix}", SPLIT_NAMES.get(image.split, "train"), stored)
