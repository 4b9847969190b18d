"""One job lifecycle for every kind of job row."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobs
from core.models import JobStatus
from labeling.models import ExportJob, ImportJob
from tests.factories import ProjectFactory
from training.models import EmbeddingRun

pytestmark = pytest.mark.django_db


def test_every_job_table_is_known_to_the_lifecycle():
    names = {model.__name__ for model in jobs.job_models()}
    assert names == {"ImportJob", "ExportJob", "TrainingRun", "PrelabelRun", "EmbeddingRun", "BlurRun"}


def test_the_stale_sweep_fails_silent_jobs_of_every_kind_and_leaves_live_ones():
    project = ProjectFactory()
    long_ago = timezone.now() - timedelta(days=1)
    silent = [
        ImportJob.objects.create(project=project, source_path="/x", status=JobStatus.RUNNING, heartbeat_at=long_ago),
        ExportJob.objects.create(project=project, format="coco", status=JobStatus.RUNNING, heartbeat_at=long_ago),
        EmbeddingRun.objects.create(project=project, model_key="k", status=JobStatus.RUNNING, heartbeat_at=long_ago),
    ]
    alive = ExportJob.objects.create(project=project, format="yolo", status=JobStatus.RUNNING,
                                     heartbeat_at=timezone.now())
    assert jobs.stale_jobs_fail() == 3
    for job in silent:
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "heartbeats" in job.error
    alive.refresh_from_db()
    assert alive.status == JobStatus.RUNNING


def test_a_claim_happens_once_and_a_late_terminal_write_cannot_clobber_a_failure():
    job = ExportJob.objects.create(project=ProjectFactory(), format="coco")
    assert jobs.job_claim(ExportJob, job.pk) and not jobs.job_claim(ExportJob, job.pk)
    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="stale")
    assert not jobs.job_finish(ExportJob, job.pk, JobStatus.SUCCEEDED)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "stale")
