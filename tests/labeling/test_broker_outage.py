"""Jobs survive a broker outage: the API answers 503 with the job's id, the row stays queued,
and once the broker is back the re-dispatch sweep (run by beat) sends it; nobody touches the
database in between. The broker here is a Redis server of the test's own, so stopping it
leaves every other user of the machine's Redis alone."""
import shutil
import time
from datetime import timedelta

import pytest
from celery.beat import EmbeddedService
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from core import jobs
from core.models import JobStatus
from labeling.models import ExportJob, Role
from tests.factories import MembershipFactory, UserFactory
from tests.processes import OwnRedis, wait_for
from tests.training.test_classification_and_simulation import classification_project
from training import services
from training.models import TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("redis-server") is None,
                                                   reason="needs the redis-server binary")]


def _use_broker(app, url: str) -> None:
    """Point the process's Celery app at ``url``, dropping connections pooled for the old one."""
    from kombu import pools

    app.pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"visibility_timeout": 3600}


@pytest.fixture
def own_broker(tmp_path, settings):
    from vision_project.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager,
             app.conf.beat_schedule, app.conf.beat_scheduler)
    redis = OwnRedis(tmp_path)
    redis.start()
    _use_broker(app, redis.url)
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield app, redis
    redis.stop()
    (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager,
     app.conf.beat_schedule, app.conf.beat_scheduler) = saved
    _use_broker(app, saved[0])
    app.conf.broker_transport_options = saved[1]


@pytest.mark.django_db(transaction=True)
def test_export_and_training_requested_while_the_broker_is_down_complete_once_it_is_back(
        own_broker, api_client, settings, monkeypatch, tmp_path):
    app, redis = own_broker
    # One epoch at 32 px learns nothing: the floor would keep the model out; the job is what is under test.
    monkeypatch.setattr(services, "deployment_floor", lambda **_: {"passed": True, "reason": "not under test"})
    settings.VISION_JOB_DISPATCH_GRACE = timedelta(0)
    settings.VISION_EMBED_ON_IMPORT = False
    project, _classes = classification_project(per_class_train=2, per_class_val=1, pool=0)
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Role.ADMIN)
    api_client.force_authenticate(admin)

    redis.stop()
    started = time.monotonic()
    export = api_client.get(f"/api/projects/{project.pk}/export/?format=csv&async=1")
    training = api_client.post(f"/api/projects/{project.pk}/training-runs/", {"epochs": 1}, format="json")
    assert time.monotonic() - started < 15, "a request waited long on the unreachable broker"
    assert export.status_code == 503, export.content
    assert training.status_code == 503, training.content
    assert export["Retry-After"] and "broker" in export.json()["detail"]
    export_id, run_id = export.json()["job_id"], training.json()["id"]
    assert ExportJob.objects.get(pk=export_id).status == JobStatus.QUEUED
    assert TrainingRun.objects.get(pk=run_id).dispatched_at is None
    # the queued job holds its place: asking again is a conflict naming it, not a second job
    assert api_client.post(f"/api/projects/{project.pk}/training-runs/", {}, format="json").json()["run_id"] == run_id

    redis.start()
    app.conf.beat_schedule = {"redispatch": {"task": "labeling.tasks.queued_jobs_redispatch", "schedule": 0.5}}
    app.conf.beat_scheduler = "celery.beat:PersistentScheduler"
    beat = EmbeddedService(app, thread=True, schedule_filename=str(tmp_path / "beat-schedule"))
    beat.start()
    try:
        with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, shutdown_timeout=60):
            assert wait_for(lambda: ExportJob.objects.get(pk=export_id).status == JobStatus.SUCCEEDED, 120)
            assert wait_for(lambda: TrainingRun.objects.get(pk=run_id).status in (
                JobStatus.SUCCEEDED, JobStatus.FAILED), 300)
    finally:
        beat.stop()
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.dispatched_at is not None and ExportJob.objects.get(pk=export_id).result_file


@pytest.mark.django_db
def test_redispatch_sends_only_what_the_broker_never_took_or_lost(monkeypatch, settings):
    sent = []
    monkeypatch.setattr(jobs.broker, "enqueue", lambda name, *args, task_id=None: sent.append((name, args)))
    settings.VISION_JOB_DISPATCH_GRACE = timedelta(seconds=30)
    settings.VISION_JOB_RESEND_AFTER = timedelta(minutes=30)
    project = classification_project(per_class_train=1, per_class_val=0, pool=0)[0]
    now = timezone.now()
    never_sent = ExportJob.objects.create(project=project, format="coco")
    just_made = ExportJob.objects.create(project=project, format="yolo")
    sent_recently = ExportJob.objects.create(project=project, format="voc", dispatched_at=now)
    sent_long_ago = ExportJob.objects.create(project=project, format="csv", dispatched_at=now - timedelta(hours=1))
    cancelled = ExportJob.objects.create(project=project, format="coco", cancel_requested=True)
    running = ExportJob.objects.create(project=project, format="coco", status=JobStatus.RUNNING)
    ExportJob.objects.filter(pk__in=[never_sent.pk, sent_recently.pk, sent_long_ago.pk, cancelled.pk, running.pk]
                             ).update(created_at=now - timedelta(hours=2))

    assert jobs.queued_jobs_redispatch(now=now) == 2
    assert sorted(args[0] for _, args in sent) == sorted([never_sent.pk, sent_long_ago.pk])
    assert {name for name, _ in sent} == {"labeling.tasks.export_execute"}
    assert ExportJob.objects.get(pk=never_sent.pk).dispatched_at is not None
    assert ExportJob.objects.get(pk=just_made.pk).dispatched_at is None  # its own send may still be on the way


@pytest.mark.django_db
def test_an_unreachable_broker_stops_the_sweep_and_leaves_rows_queued(monkeypatch):
    from kombu.exceptions import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(jobs.broker, "enqueue", down)
    project = classification_project(per_class_train=1, per_class_val=0, pool=0)[0]
    job = ExportJob.objects.create(project=project, format="coco")
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert jobs.queued_jobs_redispatch() == 0
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.dispatched_at is None


@pytest.mark.django_db
def test_every_job_kind_can_be_cancelled_over_the_api(api_client):
    project = classification_project(per_class_train=1, per_class_val=0, pool=0)[0]
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Role.ADMIN)
    api_client.force_authenticate(admin)
    from core.models import ModelVersion
    from labeling.models import ImportJob
    from training.models import EmbeddingRun, PrelabelRun

    version = ModelVersion.objects.create(project=project, number=1, backend="classifier")
    rows = {
        "import-jobs": ImportJob.objects.create(project=project, source_path="/nowhere"),
        "export-jobs": ExportJob.objects.create(project=project, format="coco"),
        "training-runs": TrainingRun.objects.create(project=project),
        "prelabel-runs": PrelabelRun.objects.create(project=project, model_version=version),
        "embedding-runs": EmbeddingRun.objects.create(project=project, model_key="x"),
    }
    for prefix, row in rows.items():
        response = api_client.post(f"/api/{prefix}/{row.pk}/cancel/")
        assert response.status_code in (200, 202), (prefix, response.content)
        row.refresh_from_db()
        assert row.status == JobStatus.CANCELLED, prefix


@pytest.mark.django_db(transaction=True)
def test_a_submit_lands_and_is_acknowledged_while_the_broker_is_away(api_client, monkeypatch):
    """The label commits first; the queue model's fit it asks for cannot reach the broker, and
    that is logged, not answered as an error (the next label asks again)."""
    from kombu.exceptions import OperationalError

    from labeling.models import Annotation
    from tests.factories import ImageFactory, LabelClassFactory, ProjectFactory, TaskFactory
    from training import queue_model

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(queue_model, "enqueue", down)
    project = ProjectFactory(task_type="classification")
    cls = LabelClassFactory(project=project)
    TaskFactory(image=ImageFactory(project=project))
    annotator = UserFactory()
    MembershipFactory(project=project, user=annotator, role=Role.ANNOTATOR)
    api_client.force_authenticate(annotator)
    work = api_client.get(f"/api/projects/{project.pk}/tasks/next/").json()
    response = api_client.post(f"/api/tasks/{work['task']['id']}/annotations/",
                               {"kind": "correct", "payload": {"labels": [cls.pk]}},
                               format="json", HTTP_IDEMPOTENCY_KEY="0b8f2f4e-1c4b-4d59-9b0a-3f5f1d2c3b4a")
    assert response.status_code == 201, response.content
    assert Annotation.objects.filter(project=project, payload={"labels": [cls.pk]}).count() == 1
    # and the fit is asked for again by the next label, not blocked by a mark for a fit never sent
    from django.core.cache import caches

    assert caches["coordination"].get(queue_model._pending_key(project.pk)) is None
