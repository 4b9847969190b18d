from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import JobStatus
from tests.factories import ProjectFactory
from training.models import TrainingRun
from training.tasks import stale_jobs_fail

pytestmark = pytest.mark.slow


def _wait_for(predicate, seconds=60):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_stale_run_is_failed_by_a_real_worker_and_fresh_one_is_left_alone(celery_worker):
    project, other = ProjectFactory(), ProjectFactory()
    stale = TrainingRun.objects.create(project=project, status=JobStatus.RUNNING,
                                       heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = TrainingRun.objects.create(project=other, status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    stale_jobs_fail.delay()
    assert _wait_for(lambda: TrainingRun.objects.get(pk=stale.pk).status == JobStatus.FAILED)
    stale.refresh_from_db()
    assert "heartbeat" in stale.error
    assert TrainingRun.objects.get(pk=fresh.pk).status == JobStatus.RUNNING
