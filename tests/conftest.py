"""Shared fixtures. Tests run against the database in DATABASE_URL and the broker in
REDIS_URL (`make test` starts PostgreSQL and Redis and sets both); media and model runs go to a
temporary folder.

Tests that need PostgreSQL or Redis carry the `postgres` or `redis` marker (a test using the
`celery_worker` fixture gets `redis` by itself) and are skipped, with what is missing as the
reason, when the configured database or broker is another kind."""
import os

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")


def _missing(kind: str) -> str | None:
    """Why a test marked `kind` cannot run against the configured services, or None."""
    from django.conf import settings
    from django.db import connection

    if kind == "postgres" and connection.vendor != "postgresql":
        return (f"needs PostgreSQL, but the configured database is {connection.vendor} "
                "(set DATABASE_URL=postgres://...; `make test` starts one)")
    broker = settings.CELERY_BROKER_URL
    if kind == "redis" and not broker.startswith(("redis://", "rediss://")):
        return (f"needs Redis as the Celery broker, but the configured broker is {broker.split(':')[0]}:// "
                "(set REDIS_URL=redis://...; `make test` starts one)")
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "celery_worker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
        for kind in ("postgres", "redis"):
            reason = item.get_closest_marker(kind) and _missing(kind)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _clear_caches():
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    for cache in caches.all():
        if isinstance(cache, RedisCache):
            # Never FLUSHDB: the Celery broker lives in the same Redis database. Only our keys go.
            client = cache._cache.get_client(write=True)
            keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        else:
            cache.clear()
    from training.queue_heads import forget_process_caches
    from training.similarity import forget_process_indexes

    forget_process_caches()
    forget_process_indexes()


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Per-project counts and marks live in caches keyed by project id; SQLite hands a
    rolled-back row's id to the next test's project, which would then see the previous test's
    entries."""
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made and signed in per test; the production hasher's cost buys nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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

    from vision_project.celery import app

    reason = _missing("redis")  # a real broker, not eager mode
    if reason:
        pytest.skip(reason)
    with app.connection_for_write() as connection:
        for queue in ("default", "gpu"):
            connection.default_channel.queue_purge(queue)
    with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker
