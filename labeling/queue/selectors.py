"""Queue reads: what the editor needs for a task, and the project's queue counts."""
from __future__ import annotations

import functools
import json
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from core.models import Image, LabelClass, ModelVersion, Prediction, Project
from vision_project.queries import Columns, execute_prepared

from ..models import Annotation, AnnotationKind, ReviewStatus, Task, TaskStatus
from ..selectors import ACCEPTED_LABEL

# Exact counts over a project's tables are cached this long; live leases are always exact.
STATS_CACHE_SECONDS = 15
# Pre-labels made when a task is served without a stored one, registered by the model side at
# start-up (training/apps.py: the deployed queue model scores the image's embedding). Each
# takes (project, image id) and returns a Prediction with its model_version loaded, or None.
PRELABEL_SOURCES: list[Callable[[Project, int], Prediction | None]] = []


def image_urls(image: Image) -> dict:
    url = image.file.url if image.file else ""
    return {"url": url, "display_url": image.display_file.url if image.display_file else url}


def image_item(image: Image) -> dict:
    """An image as the editor and the review list show it."""
    return {"id": image.pk, "name": image.original_name, **image_urls(image),
            "width": image.width, "height": image.height, "split": image.split}


def prediction_item(prediction: Prediction | None) -> dict | None:
    """A pre-label with the model version's number and class ids (model_version loaded)."""
    if prediction is None:
        return None
    return {"id": prediction.pk, "model_version": prediction.model_version.number,
            "payload": prediction.payload, "class_ids": prediction.model_version.class_ids}


# What image_item reads.
IMAGE_ITEM_FIELDS = ("id", "original_name", "file", "display_file", "width", "height", "split")


def task_work_item(*, task: Task, project: Project, user=None) -> dict:
    """A leased task with its image, the deployed model's pre-label and the taxonomy. The
    pre-label comes with its image and (PostgreSQL) the taxonomy in one query; only an image
    without one costs more.
    (One deployed version per project, one prediction per image and version: a unique lookup.)

    `rejected`: the caller's latest label of this image that a lead rejected, with the
    lead's comment, so they see why on their next look; asked only for a task queued again
    (a slot past the first round), so a first look costs no query."""
    prediction, label_classes = _deployed_prediction_with_image(task.image_id, project.pk)
    for source in PRELABEL_SOURCES:
        if prediction is not None:
            break
        prediction = source(project, task.image_id)
    image = prediction.image if prediction else Image.objects.only(*IMAGE_ITEM_FIELDS).get(pk=task.image_id)
    if label_classes is None:
        label_classes = _label_classes(project.pk)
    return {
        "task": {
            "id": task.pk,
            "slot": task.slot,
            "lease_expires_at": task.lease_expires_at,
            "is_random_pick": task.is_random_pick,
        },
        "image": image_item(image),
        "prediction": prediction_item(prediction),
        "label_classes": label_classes,
        "task_type": project.task_type,
        "project_id": project.pk,
        "rejected": _rejection_of(task=task, project=project, user=user),
    }


@functools.cache
def _work_item_columns() -> tuple[Columns, Columns, Columns]:
    return (Columns(Prediction, "p", ("id", "image_id", "model_version_id", "payload")),
            Columns(ModelVersion, "v", ("id", "number", "class_ids")),
            Columns(Image, "i", tuple(Image._meta.get_field(name).attname for name in IMAGE_ITEM_FIELDS)))


def _deployed_prediction_with_image(image_id: int, project_id: int) -> tuple[Prediction | None, list[dict] | None]:
    """The deployed version's pre-label of the image, with its model version (number, class
    ids) and its image (what image_item reads), and on PostgreSQL the project's taxonomy
    (_label_classes) in the same row: one hand-written statement per next. The taxonomy is
    None where it did not come along (no pre-label, another database)."""
    prediction_columns, version_columns, image_columns = _work_item_columns()
    with_classes = connection.vendor == "postgresql"
    taxonomy = (
        ", (SELECT json_agg(json_build_array(c.id, c.name, c.color, c.hotkey, c.parent_id) "
        f'ORDER BY c."order", c.id)::text FROM "{LabelClass._meta.db_table}" c WHERE c.project_id = v.project_id)'
    ) if with_classes else ""
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"SELECT {prediction_columns.sql}, {version_columns.sql}, {image_columns.sql}{taxonomy} "
            f'FROM "{Prediction._meta.db_table}" p JOIN "{ModelVersion._meta.db_table}" v ON v.id = p.model_version_id '
            f'JOIN "{Image._meta.db_table}" i ON i.id = p.image_id '
            "WHERE p.image_id = %s AND v.project_id = %s AND v.is_deployed",
            [image_id, project_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None, None
    prediction = prediction_columns.build(row)
    prediction.model_version = version_columns.build(row, prediction_columns.width)
    prediction.image = image_columns.build(row, prediction_columns.width + version_columns.width)
    label_classes = _label_class_items(json.loads(row[-1] or "[]")) if with_classes else None
    return prediction, label_classes


def _label_classes(project_id: int) -> list[dict]:
    """The taxonomy as the editor gets it, in its order (one hand-written statement)."""
    with connection.cursor() as cursor:
        execute_prepared(cursor, f'SELECT id, name, color, hotkey, parent_id FROM "{LabelClass._meta.db_table}" '
                       'WHERE project_id = %s ORDER BY "order", id', [project_id])
        return _label_class_items(cursor.fetchall())


def _label_class_items(rows) -> list[dict]:
    return [{"id": pk, "name": name, "color": color, "hotkey": hotkey, "parent": parent}
            for pk, name, color, hotkey, parent in rows]


def _rejection_of(*, task: Task, project: Project, user) -> dict | None:
    if user is None or task.slot < project.annotations_per_image:
        return None
    rejected = (
        Annotation.objects.filter(image_id=task.image_id, author=user, review_status=ReviewStatus.REJECTED)
        .select_related("reviewed_by").order_by("-reviewed_at", "-id").first()
    )
    if rejected is None:
        return None
    return {"annotation_id": rejected.pk, "comment": rejected.review_comment,
            "reviewed_by": rejected.reviewed_by.username if rejected.reviewed_by else None,
            "reviewed_at": rejected.reviewed_at, "payload": rejected.payload}


def annotator_done_today(*, project: Project, user) -> int:
    """Labels (accepted or corrected) the caller submitted in this project since local midnight."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Annotation.objects.filter(
        project=project, author=user, created_at__gte=midnight,
        kind__in=(AnnotationKind.ACCEPT, AnnotationKind.CORRECT),
    ).count()


def project_queue_stats(*, project: Project) -> dict:
    return projects_queue_stats(projects=[project])[project.pk]


def projects_queue_stats(*, projects: list[Project]) -> dict[int, dict]:
    """Queue counts per project id, for the project list: a fixed number of queries
    however many projects. Totals are exact but cached for STATS_CACHE_SECONDS, so a page
    of projects costs no full counts per request; leased tasks are counted live on their
    small partial index.

    open_tasks: open and not under a live lease; flagged: images with a flag awaiting a lead.
    """
    ids = [project.pk for project in projects]
    if not ids:
        return {}
    keys = {pk: f"vision:queue-stats:{pk}" for pk in ids}
    cached = cache.get_many(keys.values())
    totals = {pk: cached[key] for pk, key in keys.items() if key in cached}
    missing = [pk for pk in ids if pk not in totals]
    if missing:
        fresh = _totals(missing)
        cache.set_many({keys[pk]: fresh[pk] for pk in missing}, STATS_CACHE_SECONDS)
        totals.update(fresh)
    leased = _count_by_project(Task.objects.filter(
        project_id__in=ids, status=TaskStatus.OPEN, lease_expires_at__isnull=False,
        lease_expires_at__gt=timezone.now(),
    ))
    deployed = {
        row.pop("project_id"): row
        for row in ModelVersion.objects.filter(project_id__in=ids, is_deployed=True)
        .values("project_id", "id", "number", "primary_metric", "metrics")
    }
    return {
        pk: {
            "images": totals[pk]["images"],
            "labeled_images": totals[pk]["labeled_images"],
            "open_tasks": max(totals[pk]["open"] - leased.get(pk, 0), 0),
            "leased_tasks": leased.get(pk, 0),
            "done_tasks": totals[pk]["done"],
            "flagged": totals[pk]["flagged"],
            "deployed_version": deployed.get(pk),
        }
        for pk in ids
    }


def _count_by_project(queryset, distinct_images: bool = False) -> dict[int, int]:
    count = Count("image_id", distinct=True) if distinct_images else Count("id")
    return dict(queryset.order_by().values("project_id").annotate(n=count).values_list("project_id", "n"))


def _totals(project_ids: list[int]) -> dict[int, dict]:
    tasks = {
        row["project_id"]: row
        for row in Task.objects.filter(project_id__in=project_ids).order_by().values("project_id").annotate(
            open=Count("id", filter=Q(status=TaskStatus.OPEN)),
            done=Count("id", filter=Q(status=TaskStatus.DONE)),
        )
    }
    annotations = Annotation.objects.filter(project_id__in=project_ids)
    images = _count_by_project(Image.objects.filter(project_id__in=project_ids))
    labeled = _count_by_project(annotations.filter(ACCEPTED_LABEL), distinct_images=True)
    flagged = _count_by_project(annotations.filter(kind=AnnotationKind.FLAG, review_status=ReviewStatus.PENDING),
                                distinct_images=True)
    return {
        pk: {
            "images": images.get(pk, 0),
            "labeled_images": labeled.get(pk, 0),
            "flagged": flagged.get(pk, 0),
            "open": tasks.get(pk, {}).get("open", 0),
            "done": tasks.get(pk, {}).get("done", 0),
        }
        for pk in project_ids
    }
