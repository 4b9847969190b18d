"""Reads on the human side."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from core.models import Image, Project

from .models import Annotation, AnnotationKind, AnnotationState, ReviewStatus

# An annotation that counts as an image's label: a submitted accept or correction
# (imports included) that a reviewer has not rejected.
ACCEPTED_LABEL = (
    Q(kind__in=[AnnotationKind.ACCEPT, AnnotationKind.CORRECT])
    & Q(state=AnnotationState.SUBMITTED)
    & ~Q(review_status=ReviewStatus.REJECTED)
)


def image_latest_labels(project: Project) -> QuerySet[Annotation]:
    """Each image's current label: its most recent accepted annotation (by created_at,
    then id), one row per labeled image, ordered by image id. Images without one are
    absent. Read the labels from `.payload` (see labeling/payloads.py); for kind=accept it
    holds the accepted pre-labels. Chain `.select_related("image")` as needed."""
    latest = (
        Annotation.objects.filter(ACCEPTED_LABEL, image=OuterRef("image"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    return (
        Annotation.objects.filter(ACCEPTED_LABEL, project=project)
        .filter(id=Subquery(latest))
        .order_by("image_id")
    )


def image_current_label(image: Image) -> dict | None:
    """The payload of the image's latest accepted annotation, or None when it has none."""
    current = image_current_annotation(image)
    return current.payload if current is not None else None


def image_current_annotation(image: Image) -> Annotation | None:
    """The image's latest accepted annotation (its current label), or None."""
    return (
        Annotation.objects.filter(ACCEPTED_LABEL, image=image)
        .order_by("-created_at", "-id")
        .only("id", "payload", "source")
        .first()
    )
