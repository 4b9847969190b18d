"""The image browser (leads): every image of a project with its label, who labeled it, its
review state and the deployed model's uncertainty, filtered and paged by id.

Two queries a page whatever its size: each row's current label, labeler and uncertainty
come as correlated subqueries on indexes (annotation_image_latest, the prediction's unique
(image, model_version) key), the page's review states in one more; a page is a keyset range of ids
(`after`), so page 1,000 costs what page 1 does. Filters are semi-joins on the
annotations of the project (annotation_project_time) or the image's own columns.
"""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from core.models import Image, ModelVersion, Prediction, Project

from .models import Annotation, AnnotationKind, AnnotationState, ReviewStatus
from .payloads import payload_class_ids
from .queue.selectors import image_urls
from .review import with_label
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


def _disagreement(project: Project) -> QuerySet:
    """Images where someone changed what the model proposed (a counted correction), or two
    counted labels say different things: one grouped pass over the project's labels."""
    return (
        Annotation.objects.filter(ACCEPTED_LABEL, project=project).values("image_id")
        .annotate(payloads=Count("payload", distinct=True),
                  corrections=Count("pk", filter=Q(kind=AnnotationKind.CORRECT)))
        .filter(Q(payloads__gt=1) | Q(corrections__gt=0)).values("image_id")
    )


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
    (the current label's payload), `labeled_by` and `uncertainty` (the deployed version's
    prediction; None without one). The review states come per page (`_states`)."""
    latest = _annotations().filter(ACCEPTED_LABEL).order_by("-created_at", "-id")
    deployed = ModelVersion.objects.filter(project_id=project.pk, is_deployed=True).values("pk")[:1]
    images = Image.objects.filter(project=project).annotate(
        label=Subquery(latest.values("payload")[:1]),
        labeled_by=Subquery(latest.values("author__username")[:1]),
        uncertainty=Subquery(
            Prediction.objects.filter(image_id=OuterRef("pk"), model_version_id=Subquery(deployed))
            .values("uncertainty")[:1]
        ),
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
        images = images.filter(pk__in=with_label(
            Annotation.objects.filter(ACCEPTED_LABEL, project=project), project, label).values("image_id"))
    if uncertainty_min is not None:
        # On the prediction index (model_version, -uncertainty), not row by row.
        images = images.filter(pk__in=Prediction.objects.filter(
            model_version_id=Subquery(deployed), uncertainty__gte=uncertainty_min).values("image_id"))
    if disagreement:
        images = images.filter(pk__in=_disagreement(project))
    if status == "flagged":
        images = images.filter(_pending_flag())
    elif status == "pending":
        images = images.filter(_pending_label())
    elif status == "rejected":
        images = images.filter(_rejected())
    elif status == "labeled":
        images = images.filter(_labeled())
    elif status == "unlabeled":
        images = images.filter(~_labeled())
    return images.order_by("pk")


def _states(image_ids: list[int]) -> dict[int, set[str]]:
    """Per image of a page: "flagged" (a flag awaiting a lead), "pending" (a label awaiting
    review), "rejected" (a rejected annotation); one query on annotation_image_latest. (As
    EXISTS columns PostgreSQL would hash the whole table's matches for a page of 60.)"""
    states: dict[int, set[str]] = {pk: set() for pk in image_ids}
    rows = Annotation.objects.filter(image_id__in=image_ids).values_list("image_id", "kind", "state", "review_status")
    for image_id, kind, state, review in rows:
        if review == ReviewStatus.REJECTED:
            states[image_id].add("rejected")
        elif review == ReviewStatus.PENDING and state == AnnotationState.SUBMITTED:
            if kind == AnnotationKind.FLAG:
                states[image_id].add("flagged")
            elif kind in (AnnotationKind.ACCEPT, AnnotationKind.CORRECT):
                states[image_id].add("pending")
    return states


def browser_row(image: Image, states: set[str], class_names: dict[int, str]) -> dict:
    label = image.label or {}
    class_ids = payload_class_ids(label)
    if "flagged" in states:
        status = "flagged"
    elif "pending" in states:
        status = "pending"
    elif image.label is not None:
        status = "labeled"
    elif "rejected" in states:
        status = "rejected"
    else:
        status = "unlabeled"
    return {
        "id": image.pk, "name": image.original_name, **image_urls(image),
        "width": image.width, "height": image.height, "split": image.split,
        "classes": sorted({class_names.get(pk, f"class {pk}") for pk in class_ids}),
        "boxes": len(label.get("boxes", [])) if "boxes" in label else None,
        "polygons": len(label.get("polygons", [])) if "polygons" in label else None,
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
    states = _states([image.pk for image in rows])
    return {"results": [browser_row(image, states[image.pk], class_names) for image in rows],
            "next_after": rows[-1].pk if more else None, "count": count}

