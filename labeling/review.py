"""Review by leads: list annotations, accept or reject them, and what counts as a label.

A rejected label stops counting and its image goes back to the queue as a fresh task, in
its old place, for anyone (its author too: the rejected label no longer counts as theirs,
see queue.services.task_claim_next). A flag keeps its image out of the training data until
a lead decides: accepting it confirms the image unclear (the image leaves both splits),
rejecting it sends the image back to the queue.

Bulk review decides many annotations at once, each on its own (one already reviewed does
not undo the others). A lead fixes a label in place by labeling the image: a new
annotation by the lead (append-only, accepted by its author), which becomes the image's
label as the newest; the label it replaces, when still pending, is rejected with a
comment saying who fixed it and is not queued again (the lead's label is the answer).
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.models import Image, Project, Split
from vision_project.api_errors import Conflict

from .models import (
    Annotation,
    AnnotationKind,
    AnnotationSource,
    AnnotationState,
    ReviewStatus,
    Task,
    TaskStatus,
)
from .payloads import OBJECT_KEYS
from .queue.services import task_reopen_for_image
from .selectors import ACCEPTED_LABEL
from .services import label_checked
from .signals import annotation_rejected
from .taxonomy import class_subtree, with_any_label

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
    """Newest first. `label`: the class or one below it appears in the payload. `disagreement`: the person
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
        annotations = with_label(annotations, project, label)
    return annotations.order_by("-created_at", "-id")


def with_label(annotations: QuerySet[Annotation], project: Project, label: int) -> QuerySet[Annotation]:
    """Annotations that count for class `label`: naming it or a class below it in the tree
    (an "oak" label counts for "tree")."""
    return with_any_label(annotations, class_subtree(project, label))


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
        annotation_rejected.send(sender=Annotation, annotation=annotation)
    return annotation


def _latest_task(image: Image) -> Task | None:
    return Task.objects.filter(image=image).order_by("-slot").first()


# At most this many annotations per bulk review request.
BULK_REVIEW_MAX = 500


def annotations_review_bulk(
    *, project: Project, annotation_ids: list[int], reviewer, decision: str, comment: str = ""
) -> list[dict]:
    """Decide many annotations of one project, each in its own transaction. One result per
    id, in the order asked: {"id", "ok", "review_status", "detail"}; an id of another
    project reads as not found, one reviewed already as a conflict (its decision stands)."""
    ids = list(dict.fromkeys(annotation_ids))
    in_project = set(Annotation.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True))
    results = []
    for pk in ids:
        if pk not in in_project:
            results.append({"id": pk, "ok": False, "review_status": None, "detail": "No such annotation."})
            continue
        try:
            annotation = annotation_review(annotation_id=pk, reviewer=reviewer, decision=decision, comment=comment)
        except Conflict as conflict:
            status = Annotation.objects.filter(pk=pk).values_list("review_status", flat=True).first()
            results.append({"id": pk, "ok": False, "review_status": status, "detail": conflict.detail})
        else:
            results.append({"id": pk, "ok": True, "review_status": annotation.review_status, "detail": ""})
    return results


@transaction.atomic
def label_fix(
    *, image: Image, lead, payload, empty: bool = False, comment: str = "", replaces: Annotation | None = None
) -> Annotation:
    """The lead's own label of `image`, which becomes its label (the newest counts).

    `replaces`: the label being fixed (default: the image's current label). When it is
    still pending it is rejected with a comment naming the lead and is not queued again;
    an accepted one is simply superseded. An image that had no label yet has its open tasks
    nobody holds closed, so it is not served again over the lead's label."""

    project = image.project
    clean = label_checked(payload if payload is not None else {OBJECT_KEYS.get(project.task_type, "boxes"): []},
                          project=project, image=image, kind=AnnotationKind.CORRECT, empty=empty)
    if replaces is None:
        replaces = (Annotation.objects.filter(ACCEPTED_LABEL, image=image)
                    .order_by("-created_at", "-id").first())
    if replaces is not None:
        replaces = Annotation.objects.select_for_update(of=("self",)).select_related("image").get(pk=replaces.pk)
        if replaces.image_id != image.pk:
            raise Conflict(f"Annotation {replaces.pk} is not a label of image {image.pk}.", annotation_id=replaces.pk)
        if replaces.kind not in (AnnotationKind.ACCEPT, AnnotationKind.CORRECT):
            raise Conflict(f"Annotation {replaces.pk} is a {replaces.kind}, not a label: review it instead.",
                           annotation_id=replaces.pk)
    now = timezone.now()
    fixed = Annotation.objects.create(
        project=project, image=image, task=replaces.task if replaces else None, author=lead,
        kind=AnnotationKind.CORRECT, source=AnnotationSource.HUMAN, state=AnnotationState.SUBMITTED,
        payload=clean, prediction=replaces.prediction if replaces else None,
        review_status=ReviewStatus.ACCEPTED, reviewed_by=lead, reviewed_at=now,
        review_comment=comment or "Label set by a lead.",
    )
    if replaces is not None and replaces.review_status == ReviewStatus.PENDING:
        replaces.review_status = ReviewStatus.REJECTED
        replaces.reviewed_by = lead
        replaces.reviewed_at = now
        replaces.review_comment = comment or f"Fixed by {lead.get_username()} (annotation {fixed.pk})."
        replaces.save(update_fields=["review_status", "reviewed_by", "review_comment", "reviewed_at"])
        annotation_rejected.send(sender=Annotation, annotation=replaces)
    if replaces is None:
        Task.objects.filter(image=image, status=TaskStatus.OPEN).filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
        ).update(status=TaskStatus.DONE, completed_by=lead, completed_at=now, lease_holder=None,
                 lease_expires_at=None)
    return fixed
