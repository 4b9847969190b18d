"""Writes on the model side. Named <entity>_<action>, keyword-only, atomic."""
from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from labeling.models import ImportJob, ExportJob, JobStatus

from .models import PrelabelRun, TrainingRun

JOB_MODELS = (TrainingRun, PrelabelRun, ImportJob, ExportJob)


def stale_jobs_fail(*, now=None) -> int:
    """Mark running jobs whose heartbeat went silent as failed; return how many.

    A worker killed mid-run cannot write its own failure, so this sweep does. The write
    is conditional on RUNNING and on the stale heartbeat, so a job that just beat or
    finished is left alone. Failed runs can be retried; nothing else is touched.
    """
    now = now or timezone.now()
    cutoff = now - settings.VISION_JOB_STALE_AFTER
    failed = 0
    for model in JOB_MODELS:
        failed += model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=JobStatus.FAILED,
            error="The worker stopped sending heartbeats (killed or lost); the job was marked failed.",
            finished_at=now,
        )
    return failed
