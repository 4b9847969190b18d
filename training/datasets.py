"""Dataset snapshots: the project's verified labels, frozen into the backends' DatasetSpec."""
from __future__ import annotations

from dataclasses import dataclass

from core.models import Image, Project, Split, TaskType
from core.storage import local_path, prefetch
from labeling.payloads import instance_rings
from ml.base import DatasetSpec, Item

from . import selectors


@dataclass
class Snapshot:
    """A DatasetSpec plus what maps it back to rows: class ids in model output order."""

    spec: DatasetSpec
    class_ids: list[int]
    train_image_ids: list[int]
    val_image_ids: list[int]


class SnapshotError(ValueError):
    """The project's labels cannot make a training set; the message says what is missing."""


def image_local_path(image: Image) -> str:
    """The stored file on local disk (a cached copy for remote storage): backends read files."""
    try:
        return local_path(image.file.name)
    except OSError as exc:
        raise SnapshotError(f"image {image.pk} ({image.original_name}) cannot be read from storage: {exc}") from exc


def _item(image: Image, payload: dict, index_of: dict[int, int], task_type: str) -> Item | None:
    path = image_local_path(image)
    if task_type == TaskType.CLASSIFICATION:
        labels = [index_of[c] for c in payload.get("labels", []) if c in index_of]
        if not labels:
            return None  # its only class was deleted since: nothing to learn
        return Item(path=path, width=image.width, height=image.height, label=labels[0])
    if task_type == TaskType.SEGMENTATION:
        instances = tuple((instance_rings(p), index_of[p["label"]]) for p in payload.get("polygons", [])
                          if p.get("label") in index_of)
        return Item(path=path, width=image.width, height=image.height, instances=instances)
    boxes = tuple(
        (float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]), index_of[b["label"]])
        for b in payload.get("boxes", [])
        if b.get("label") in index_of and not b.get("ignore")  # ignore regions are not trained on
    )
    return Item(path=path, width=image.width, height=image.height, boxes=boxes)


def dataset_snapshot(*, project: Project, require_train: bool = True) -> Snapshot:
    """The latest verified label of every image, split by the image's fixed split.

    Images out of both splits (UNASSIGNED) are left out. An empty detection payload is kept:
    "nothing here" is a label too (a background image). Raises SnapshotError when a split
    the training needs is empty.
    """
    classes = list(project.label_classes.values_list("id", "name"))
    if not classes:
        raise SnapshotError(f"project {project.pk} has no label classes")
    class_ids = [c[0] for c in classes]
    index_of = {class_id: i for i, class_id in enumerate(class_ids)}
    train, val, train_ids, val_ids = [], [], [], []
    labels = list(selectors.training_labels(project).iterator(chunk_size=2000))
    prefetch(label.image.file.name for label in labels)  # remote storage: fetched in parallel
    for label in labels:
        image = label.image
        item = _item(image, label.payload, index_of, project.task_type)
        if item is None:
            continue
        if image.split == Split.TRAIN:
            train.append(item)
            train_ids.append(image.pk)
        else:
            val.append(item)
            val_ids.append(image.pk)
    if require_train and not train:
        raise SnapshotError("no verified labels in the train split yet")
    if not val:
        raise SnapshotError(
            "no verified labels in the validation split yet; versions are compared on it, "
            "so label some validation images first"
        )
    spec = DatasetSpec(task=project.task_type, class_names=[c[1] for c in classes], train=train, val=val)
    return Snapshot(spec, class_ids, train_ids, val_ids)
