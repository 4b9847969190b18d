"""Celery entry points: take ids, call a service, return.

Training, prelabel and embedding run on the "gpu" queue (see CELERY_TASK_ROUTES). Both are safe to
deliver twice: the service claims its row with a conditional update, so a redelivered
message finds nothing to claim. That is what makes acks_late safe here; the time limits stay
under the broker's visibility timeout, so a long run is never handed out twice while alive.
"""
from celery import shared_task
from django.conf import settings

from core import jobs

from . import services


@shared_task(name="training.tasks.stale_jobs_fail")
def stale_jobs_fail() -> int:
    return jobs.stale_jobs_fail()


@shared_task(
    name="training.tasks.training_run_execute",
    acks_late=True,
    soft_time_limit=settings.VISION_TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.VISION_TRAIN_SOFT_TIME_LIMIT + 600,
)
def training_run_execute(run_id: int) -> None:
    services.training_run_execute(run_id=run_id)


@shared_task(
    name="training.tasks.prelabel_execute",
    acks_late=True,
    soft_time_limit=settings.VISION_PRELABEL_SOFT_TIME_LIMIT,
    time_limit=settings.VISION_PRELABEL_SOFT_TIME_LIMIT + 300,
)
def prelabel_execute(run_id: int) -> None:
    services.prelabel_run_execute(run_id=run_id)


@shared_task(
    name="training.tasks.embed_images",
    acks_late=True,
    soft_time_limit=settings.VISION_EMBED_SOFT_TIME_LIMIT,
    time_limit=settings.VISION_EMBED_SOFT_TIME_LIMIT + 300,
)
def embed_images(run_id: int) -> None:
    services.embedding_run_execute(run_id=run_id)


@shared_task(name="training.tasks.auto_retrain_check")
def auto_retrain_check() -> list[int]:
    return services.auto_retrain_check()


@shared_task(name="training.tasks.queue_model_fit")
def queue_model_fit(project_id: int) -> int | None:
    """Refit the queue model when enough new labels arrived (the "default" queue: seconds
    on a CPU); returns the new version's id."""
    from core.models import Project

    from .queue_model import queue_model_fit as fit

    project = Project.objects.filter(pk=project_id).first()
    version = fit(project=project) if project is not None else None
    return version.pk if version is not None else None


@shared_task(name="training.tasks.queue_priorities_refresh")
def queue_priorities_refresh(project_id: int) -> None:
    """Re-rank a project's open tasks (after a settings change, new vectors or a deploy)."""
    from core.models import Project

    from .ranking import queue_priorities_refresh as refresh

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        refresh(project=project)


@shared_task(name="training.tasks.similarity_index_rebuild")
def similarity_index_rebuild(project_id: int) -> None:
    """Rebuild a project's similarity index from every stored vector and publish it."""
    from core.models import Project

    from .similarity import similarity_index_rebuild as rebuild

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        rebuild(project=project)
