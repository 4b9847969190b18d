"""Celery entry points: take ids, call a service, return."""
from celery import shared_task

from . import services


@shared_task(name="training.tasks.stale_jobs_fail")
def stale_jobs_fail() -> int:
    return services.stale_jobs_fail()
