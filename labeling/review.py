"""Review by leads: list annotations, accept or reject them, and what counts as a label.

A rejected label stops counting and its image goes back to the queue as a fresh task, in
its old place, for anyone (its author too: the rejected label no longer counts as theirs,
see queue_services.task_claim_next). A flag keeps its image out of the training data until
a lead decides: accepting it confirms the image unclear (the image leaves both splits),
rejecting it sends the image back to the queue.
"""
from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from vision_project.api_errors import Conflict

from .models import Annotation, AnnotationKind, AnnotationState, Image, Project, ReviewStatus, Split, Task
from .queue_services import task_reopen_for_image
from .reports.aggregates import report_aggregates_record_rejection

ACCEPT, REJECT = "accept", "reject"


def annotations_for_review(
    *,
    project: Project,
    author: str | None = None,
    label: int | None = None,
    kind: str | None = None,
    review_status: str | None = None,
    disagreement: bool = False,
) -> QuerySet[Annotation]:
    """Newest first. `label`: the class appears in the payload. `disagreement`: the person
    changed what the model proposed (a correction; an accept copies the pre-label)."""
    annotations = Annotation.objects.filter(project=project).select_related(
        "image", "author", "reviewed_by", "prediction__model_version"
    )
    if author:
        annotations = annotations.filter(author__username=author)
    if kind:
        annotations = annotations.filter(kind=kind)
    if review_status:
        annotations = annotations.filter(review_status=review_status)
    if disagreement:
        annotations = annotations.filter(kind=AnnotationKind.CORRECT)
    if label is not None:
        annotations = _with_label(annotations, label)
    return annotations.order_by("-created_at", "-id")


def _with_label(annotations: QuerySet[Annotation], label: int) -> QuerySet[Annotation]:
    if connection.vendor == "postgresql":
        return annotations.filter(
            Q(payload__contains={"labels": [label]}) | Q(payload__contains={"boxes": [{"label": label}]})
        )
    # JSON containment is PostgreSQL-only; the embedded SQLite setup is small enough to scan.
    matching = [
        pk for pk, payload in annotations.values_list("pk", "payload")
        if label in (payload or {}).get("labels", [])
        or any(box.get("label") == label for box in (payload or {}).get("boxes", []))
    ]
    return annotations.filter(pk__in=matching)


@transaction.atomic
def annotation_review(*, annotation_id: int, reviewer, decision: str, comment: str = "") -> Annotation:
    """Record a lead's decision on a pending annotation. Raises Conflict when it was
    reviewed already (the first decision stands; reviews are not silently overwritten)."""
    annotation = (
        Annotation.objects.select_for_update(of=("self",))
        .select_related("image", "task", "prediction").defer("prediction__embedding")
        .get(pk=annotation_id)
    )
    if annotation.review_status != ReviewStatus.PENDING:
        raise Conflict(
            f"Annotation {annotation.pk} was already reviewed ({annotation.review_status}).",
            annotation_id=annotation.pk,
        )
    annotation.review_status = ReviewStatus.ACCEPTED if decision == ACCEPT else ReviewStatus.REJECTED
    annotation.reviewed_by = reviewer
    annotation.review_comment = comment
    annotation.reviewed_at = timezone.now()
    annotation.save(update_fields=["review_status", "reviewed_by", "review_comment", "reviewed_at"])

    counted = annotation.state == AnnotationState.SUBMITTED
    if decision == ACCEPT and annotation.kind == AnnotationKind.FLAG:
        Image.objects.filter(pk=annotation.image_id).update(split=Split.UNASSIGNED)
    elif decision == REJECT and counted and annotation.kind != AnnotationKind.SKIP:
        # A skip already put a fresh task in the queue when it was submitted.
        task_reopen_for_image(image=annotation.image, like=annotation.task or _latest_task(annotation.image))
    if decision == REJECT:
        report_aggregates_record_rejection(annotation=annotation)
    return annotation


def _latest_task(image: Image) -> Task | None:
    return Task.objects.filter(image=image).order_by("-slot").first()
