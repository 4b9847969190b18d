"""Shared fixtures. Tests run against the database in DATABASE_URL (PostgreSQL in CI) and
the broker in REDIS_URL; media and model runs go to a temporary folder."""
import os

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VISION_RUNS_DIR = tmp_path / "runs"
    settings.VISION_WEIGHTS_DIR = tmp_path / "weights"
    os.environ["YOLO_CONFIG_DIR"] = str(tmp_path / "ultralytics")


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, **extra):
        return django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker thread consuming both queues from the configured broker."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from vision_project.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("worker tests need REDIS_URL (the CI sets it): a real broker, not eager mode")
    with app.connection_for_write() as connection:
        for queue in ("default", "gpu"):
            connection.default_channel.queue_purge(queue)
    with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker
