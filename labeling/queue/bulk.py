"""Bulk labels from a grid: one request names a class for many images (a Discover cluster
minus the members the person deselected, or a page of proposals they verified).

Each image goes through the ordinary submit (annotation_submit), so validation, the report
aggregates and the queue model's refit trigger apply as for the editor. Each image gets its
own idempotency key derived from the request's (``<key>:<image id>``): a retried request
finds the annotations of the first and writes nothing twice, and one bad image leaves the
rest of the batch landed. An image counts as accepting the deployed model's pre-label when
that pre-label proposes the same class (the reports see a pre-label taken unchanged);
otherwise the label is a correction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import LabelClass, Prediction, Project

from ..models import Annotation, AnnotationKind, ReviewStatus, Task, TaskStatus
from ..payloads import PayloadError
from ..services import label_class_create
from .services import annotation_submit

MAX_BULK_IMAGES = 500
MAX_KEY_LENGTH = 80  # the per-image key adds ':' and the id within Annotation's 100


@dataclass
class BulkResult:
    label_class: LabelClass
    results: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)


def bulk_label_class(*, project: Project, label_class_id: int | None, new_class_name: str | None) -> LabelClass:
    """The class a bulk label names: an existing class by id, or one found or created by
    name (so a retried request that created it finds it)."""
    if (label_class_id is None) == (not (new_class_name or "").strip()):
        raise ValidationError("Give either label_class (an existing class id) or new_class_name.")
    if label_class_id is not None:
        found = project.label_classes.filter(pk=label_class_id).first()
        if found is None:
            raise ValidationError(f"Class {label_class_id} is not a class of project {project.pk}.")
        return found
    name = (new_class_name or "").strip()
    return project.label_classes.filter(name=name).first() or label_class_create(project=project, name=name)


def annotations_bulk_submit(*, project: Project, user, label_class: LabelClass, image_ids: list[int],
                            idempotency_key: str, time_spent_ms: int = 0) -> BulkResult:
    """Label each of ``image_ids`` as ``label_class`` by ``user``. Per image: ``created``,
    ``replayed`` (this request's key was seen for it), ``already_labeled`` (the user labeled
    it before, or it has no open task), ``leased`` (someone else holds its task now),
    ``not_found`` (not an image of the project) or ``error`` (with the reason)."""
    key = idempotency_key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"idempotency_key must be 1-{MAX_KEY_LENGTH} characters.")
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if not ids or len(ids) > MAX_BULK_IMAGES:
        raise ValidationError(f"image_ids must hold 1-{MAX_BULK_IMAGES} images; got {len(ids)}.")
    if project.task_type != "classification":
        raise ValidationError("Bulk labels name one class per image: they are for classification projects.")
    result = BulkResult(label_class=label_class)
    per_image_time = time_spent_ms // len(ids)
    keys = {i: f"{key}:{i}" for i in ids}
    seen = dict(Annotation.objects.filter(author=user, idempotency_key__in=keys.values())
                .values_list("image_id", "pk"))
    in_project = set(project.images.filter(pk__in=ids).values_list("id", flat=True))
    mine = set(Annotation.objects.filter(author=user, image_id__in=ids).exclude(review_status=ReviewStatus.REJECTED)
               .exclude(kind=AnnotationKind.SKIP).values_list("image_id", flat=True))
    now = timezone.now()
    open_tasks: dict[int, Task] = {}
    for task in Task.objects.filter(image_id__in=ids, status=TaskStatus.OPEN).select_related("project", "image"):
        current = open_tasks.get(task.image_id)
        if current is None or (_free(task, user, now) and not _free(current, user, now)):
            open_tasks[task.image_id] = task
    proposals = _proposed_classes(project, ids)
    for image_id in ids:
        result.results.append(_one(image_id=image_id, user=user, label_class=label_class, key=keys[image_id],
                                   seen=seen, in_project=in_project, mine=mine, task=open_tasks.get(image_id),
                                   proposal=proposals.get(image_id), now=now, time_spent_ms=per_image_time))
    return result


def _one(*, image_id, user, label_class, key, seen, in_project, mine, task, proposal, now, time_spent_ms) -> dict:
    item: dict = {"image_id": image_id, "status": "", "annotation_id": None, "detail": ""}
    if image_id in seen:
        return {**item, "status": "replayed", "annotation_id": seen[image_id]}
    if image_id not in in_project:
        return {**item, "status": "not_found", "detail": "not an image of this project"}
    if image_id in mine or task is None:
        return {**item, "status": "already_labeled",
                "detail": "you labeled it before" if image_id in mine else "no open task: it is labeled"}
    if not _free(task, user, now):
        return {**item, "status": "leased", "detail": "another person holds its task now"}
    accept = proposal is not None and proposal[1] == label_class.pk
    try:
        submitted = annotation_submit(
            task=task, user=user, idempotency_key=key, time_spent_ms=time_spent_ms,
            kind=AnnotationKind.ACCEPT if accept else AnnotationKind.CORRECT,
            payload=None if accept else {"labels": [label_class.pk]},
            prediction_id=proposal[0] if accept else None,
        )
    except (PayloadError, ValidationError) as exc:
        return {**item, "status": "error", "detail": str(exc)}
    return {**item, "status": "created" if submitted.created else "replayed",
            "annotation_id": submitted.annotation.pk}


def _free(task: Task, user, now) -> bool:
    """Nobody else holds a live lease on the task."""
    return task.lease_holder_id in (None, user.pk) or task.lease_expires_at is None or task.lease_expires_at < now


def _proposed_classes(project: Project, image_ids: list[int]) -> dict[int, tuple[int, int | None]]:
    """The deployed model's pre-label per image: (prediction id, proposed class id)."""
    rows = Prediction.objects.filter(
        model_version__project_id=project.pk, model_version__is_deployed=True, image_id__in=image_ids
    ).values_list("image_id", "pk", "payload")
    return {image_id: (pk, ((payload or {}).get("labels") or [None])[0]) for image_id, pk, payload in rows}
