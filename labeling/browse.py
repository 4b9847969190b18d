"""The image browser (leads): every image of a project with its label, who labeled it, its
review state and the deployed model's uncertainty, filtered and paged by id.

One query a page whatever its size: each row's current label, labeler, state and
uncertainty come as correlated subqueries on indexes (annotation_image_latest, the
prediction's unique (image, model_version) key), and a page is a keyset range of ids
(`after`), so page 1,000 costs what page 1 does. Filters are semi-joins on the
annotations of the project (annotation_project_time) or the image's own columns.
"""
from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from training.models import ModelVersion, Prediction

from .models import Annotation, AnnotationKind, AnnotationState, Image, Project, ReviewStatus
from .queue_selectors import image_urls
from .review import _with_label
from .selectors import ACCEPTED_LABEL

# What a row's status says, most pressing first (a flag awaiting a lead beats a label).
STATUSES = ("flagged", "pending", "rejected", "labeled", "unlabeled")
PAGE_MAX = 200


def _annotations() -> QuerySet[Annotation]:
    """The annotations of the outer query's image."""
    return Annotation.objects.filter(image_id=OuterRef("pk"))


def _pending_flag():
    return Exists(_annotations().filter(kind=AnnotationKind.FLAG, review_status=ReviewStatus.PENDING,
                                        state=AnnotationState.SUBMITTED))


def _pending_label():
    return Exists(_annotations().filter(ACCEPTED_LABEL, review_status=ReviewStatus.PENDING))


def _rejected():
    return Exists(_annotations().filter(review_status=ReviewStatus.REJECTED))


def _labeled():
    return Exists(_annotations().filter(ACCEPTED_LABEL))


def _disagreement():
    """Someone changed what the model proposed (a counted correction), or two counted
    labels of the image say different things."""
    corrected = _annotations().filter(ACCEPTED_LABEL, kind=AnnotationKind.CORRECT)
    other = Annotation.objects.filter(ACCEPTED_LABEL, image_id=OuterRef("image_id")).exclude(
        payload=OuterRef("payload"))
    differing = _annotations().filter(ACCEPTED_LABEL).filter(Exists(other))
    return Exists(corrected) | Exists(differing)


def images_for_browser(
    *,
    project: Project,
    q: str = "",
    label: int | None = None,
    annotator: str = "",
    status: str = "",
    split: str = "",
    uncertainty_min: float | None = None,
    disagreement: bool = False,
    after: int | None = None,
) -> QuerySet[Image]:
    """The project's images in id order with the columns a browser row shows: `label`
    (the current label's payload), `labeled_by`, `uncertainty` (the deployed version's
    prediction; None without one) and the state flags read by `browser_row`."""
    latest = _annotations().filter(ACCEPTED_LABEL).order_by("-created_at", "-id")
    deployed = ModelVersion.objects.filter(project_id=project.pk, is_deployed=True).values("pk")[:1]
    images = Image.objects.filter(project=project).annotate(
        label=Subquery(latest.values("payload")[:1]),
        labeled_by=Subquery(latest.values("author__username")[:1]),
        uncertainty=Subquery(
            Prediction.objects.filter(image_id=OuterRef("pk"), model_version_id=Subquery(deployed))
            .values("uncertainty")[:1]
        ),
        is_flagged=_pending_flag(),
        is_pending=_pending_label(),
        is_rejected=_rejected(),
    ).only("id", "original_name", "file", "display_file", "width", "height", "split")
    if q:
        images = images.filter(original_name__icontains=q)
    if split:
        images = images.filter(split=split)
    if after is not None:
        images = images.filter(pk__gt=after)
    if annotator:
        images = images.filter(pk__in=Annotation.objects.filter(
            project=project, author__username=annotator).values("image_id"))
    if label is not None:
        images = images.filter(pk__in=_with_label(
            Annotation.objects.filter(ACCEPTED_LABEL, project=project), label).values("image_id"))
    if uncertainty_min is not None:
        images = images.filter(uncertainty__gte=uncertainty_min)
    if disagreement:
        images = images.filter(_disagreement())
    if status == "flagged":
        images = images.filter(is_flagged=True)
    elif status == "pending":
        images = images.filter(is_pending=True)
    elif status == "rejected":
        images = images.filter(is_rejected=True)
    elif status == "labeled":
        images = images.filter(_labeled())
    elif status == "unlabeled":
        images = images.filter(~_labeled())
    return images.order_by("pk")


def browser_row(image: Image, class_names: dict[int, str]) -> dict:
    label = image.label or {}
    class_ids = list(label.get("labels", [])) or [box["label"] for box in label.get("boxes", [])]
    if image.is_flagged:
        status = "flagged"
    elif image.is_pending:
        status = "pending"
    elif image.label is not None:
        status = "labeled"
    elif image.is_rejected:
        status = "rejected"
    else:
        status = "unlabeled"
    return {
        "id": image.pk, "name": image.original_name, **image_urls(image),
        "width": image.width, "height": image.height, "split": image.split,
        "classes": sorted({class_names.get(pk, f"class {pk}") for pk in class_ids}),
        "boxes": len(label.get("boxes", [])) if "boxes" in label else None,
        "labeled_by": image.labeled_by, "status": status, "uncertainty": image.uncertainty,
    }


def browser_page(*, project: Project, limit: int = 60, with_count: bool = True, **filters) -> dict:
    """{"results", "next_after" (the id to pass as `after` for the next page, None at the
    end), "count" (matching images; only on a first page)}."""
    limit = max(1, min(limit, PAGE_MAX))
    images = images_for_browser(project=project, **filters)
    rows = list(images[: limit + 1])
    class_names = dict(project.label_classes.values_list("id", "name"))
    more = len(rows) > limit
    rows = rows[:limit]
    count = None
    if with_count and filters.get("after") is None:
        count = images.order_by().values("pk").count() if more else len(rows)
    return {"results": [browser_row(image, class_names) for image in rows],
            "next_after": rows[-1].pk if more else None, "count": count}

