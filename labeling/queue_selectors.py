"""Queue reads: what the editor needs for a task, and the project's queue counts."""
from __future__ import annotations

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from training.models import ModelVersion, Prediction

from .models import Annotation, AnnotationKind, Image, Project, ReviewStatus, Task, TaskStatus
from .selectors import ACCEPTED_LABEL

# Exact counts over a project's tables are cached this long; live leases are always exact.
STATS_CACHE_SECONDS = 15


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


def task_work_item(*, task: Task, project: Project) -> dict:
    """A leased task with its image, the deployed model's pre-label and the taxonomy."""
    image = task.image
    prediction = (
        Prediction.objects.filter(
            image_id=image.pk, model_version__project_id=project.pk, model_version__is_deployed=True
        )
        .select_related("model_version")
        .only("id", "payload", "model_version__number", "model_version__class_ids")
        .first()
    )
    return {
        "task": {
            "id": task.pk,
            "slot": task.slot,
            "lease_expires_at": task.lease_expires_at,
            "is_random_pick": task.is_random_pick,
        },
        "image": image_item(image),
        "prediction": prediction_item(prediction),
        "label_classes": list(project.label_classes.values("id", "name", "color", "hotkey", "parent")),
        "task_type": project.task_type,
        "project_id": project.pk,
    }


def project_queue_stats(*, project: Project) -> dict:
    """Queue counts for the project list. Totals are exact but cached for
    STATS_CACHE_SECONDS per server process, so a page of projects costs no full counts
    per request; leased tasks are counted live on their small partial index.

    open_tasks: open and not under a live lease; flagged: images with a flag awaiting a lead.
    """
    key = f"vision:queue-stats:{project.pk}"
    totals = cache.get(key)
    if totals is None:
        totals = _totals(project)
        cache.set(key, totals, STATS_CACHE_SECONDS)
    leased = Task.objects.filter(
        project=project, status=TaskStatus.OPEN, lease_expires_at__isnull=False,
        lease_expires_at__gt=timezone.now(),
    ).count()
    deployed = (
        ModelVersion.objects.filter(project=project, is_deployed=True)
        .values("id", "number", "primary_metric", "metrics")
        .first()
    )
    return {
        "images": totals["images"],
        "labeled_images": totals["labeled_images"],
        "open_tasks": max(totals["open"] - leased, 0),
        "leased_tasks": leased,
        "done_tasks": totals["done"],
        "flagged": totals["flagged"],
        "deployed_version": deployed,
    }


def _totals(project: Project) -> dict:
    tasks = Task.objects.filter(project=project).aggregate(
        open=Count("id", filter=Q(status=TaskStatus.OPEN)),
        done=Count("id", filter=Q(status=TaskStatus.DONE)),
    )
    annotations = Annotation.objects.filter(project=project)
    return {
        "images": Image.objects.filter(project=project).count(),
        "labeled_images": annotations.filter(ACCEPTED_LABEL).values("image_id").distinct().count(),
        "flagged": annotations.filter(kind=AnnotationKind.FLAG, review_status=ReviewStatus.PENDING)
        .values("image_id").distinct().count(),
        **tasks,
    }
