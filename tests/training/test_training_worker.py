"""Training through real Celery workers over Redis: one run per project (409), cancel, and a
worker killed mid-run."""
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from core import jobs
from core.models import ModelVersion, VersionStatus
from tests.training.test_training_loop import detection_project, no_network  # noqa: F401 (fixture)
from tests.training.test_worker_over_redis import _wait_for as wait_for
from training import services
from training.models import TrainingRun

pytestmark = pytest.mark.slow


def _status(model, pk):
    return model.objects.get(pk=pk).status


@pytest.fixture
def fast_heartbeat(settings):
    settings.VISION_JOB_HEARTBEAT_SECONDS = 0.5


def test_second_run_conflicts_and_cancel_stops_the_run(celery_worker, api_client, fast_heartbeat):
    project, admin, cls, images = detection_project(labeled_train=4, labeled_val=2, pool=0)
    api_client.force_authenticate(admin)
    url = f"/api/projects/{project.pk}/training-runs/"

    first = api_client.post(url, {"epochs": 300}, format="json")
    assert first.status_code == 202, first.json()
    run_id = first.json()["id"]
    conflict = api_client.post(url, {}, format="json")
    assert conflict.status_code == 409 and conflict.json()["run_id"] == run_id

    assert wait_for(lambda: TrainingRun.objects.get(pk=run_id).epoch >= 1, 120), "training made no progress"
    detail = api_client.get(f"/api/training-runs/{run_id}/").json()
    assert detail["status"] == "running" and detail["total_epochs"] == 300 and detail["loss"] is not None
    assert api_client.post(f"/api/training-runs/{run_id}/cancel/").status_code == 202
    assert wait_for(lambda: _status(TrainingRun, run_id) == "cancelled", 60)
    assert not ModelVersion.objects.filter(project=project).exists()

    # the project is free again; a cancel lands whether the worker has claimed the run yet or not
    again = api_client.post(url, {"epochs": 300}, format="json")
    assert again.status_code == 202
    again_id = again.json()["id"]
    assert api_client.post(f"/api/training-runs/{again_id}/cancel/").status_code == 202
    assert wait_for(lambda: _status(TrainingRun, again_id) == "cancelled", 60)
    assert not ModelVersion.objects.filter(project=project).exists()


def _start_worker_process(tmp_path: Path) -> subprocess.Popen:
    """A separate worker process on the test database, so it can be killed like a lost GPU box."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
        "VISION_RUNS_DIR": str(django_settings.VISION_RUNS_DIR),
        "VISION_WEIGHTS_DIR": str(django_settings.VISION_WEIGHTS_DIR),
        "VISION_JOB_HEARTBEAT_SECONDS": "0.5",
    }
    log = open(tmp_path / "worker.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vision_project", "worker", "-Q", "gpu", "-P", "solo",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.postgres  # a separate worker process must reach the test database
@pytest.mark.redis
def test_killed_worker_leaves_run_failed_and_deployed_model_untouched(transactional_db, tmp_path):
    from vision_project.celery import app

    project, admin, cls, images = detection_project(labeled_train=4, labeled_val=2, pool=0)
    deployed = ModelVersion.objects.create(
        project=project, number=1, backend="yolo", class_ids=[cls.pk + 999], primary_metric=0.3,
        status=VersionStatus.DEPLOYED, is_deployed=True, deployed_at=timezone.now(),
    )
    deployed.weights.save("best.pt", ContentFile(b"weights"))
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("gpu")
    worker = _start_worker_process(tmp_path)
    try:
        run = services.training_run_start(project=project, requested_by=admin, epochs=300, image_size=32)
        assert wait_for(lambda: TrainingRun.objects.get(pk=run.pk).epoch >= 1, 180), (
            (tmp_path / "worker.log").read_text()[-3000:]
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # no clean shutdown: the run cannot write its own end
        worker.wait(timeout=30)

    run.refresh_from_db()
    assert run.status == "running"
    assert jobs.stale_jobs_fail(now=timezone.now() + timedelta(hours=1)) == 1
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeat" in run.error
    assert list(ModelVersion.objects.filter(project=project)) == [deployed]
    deployed.refresh_from_db()
    assert deployed.is_deployed and deployed.status == VersionStatus.DEPLOYED

    # a failed run is not active: it can be retried
    retry = services.training_run_start(project=project, requested_by=admin, enqueue=False)
    assert retry.status == "queued"
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("gpu")
