"""Liveness, readiness and metrics endpoints."""
import pytest

from labeling.models import TaskStatus
from tests.factories import ImageFactory, ProjectFactory, TaskFactory
from vision_project import health


def test_healthz_answers_without_asking_any_dependency(client, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "database", lambda: 1 / 0)
    assert client.get("/healthz/").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_storage(client):
    response = client.get("/readyz/")
    assert response.status_code == 200, response.json()
    assert {name for name, check in response.json()["checks"].items() if check["ok"]} == {
        "database", "broker", "storage"}


@pytest.mark.django_db
def test_readyz_names_what_is_unavailable(client, monkeypatch):
    def refused():
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setitem(health.CHECKS, "broker", refused)
    response = client.get("/readyz/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"] == {"ok": False, "error": "ConnectionRefusedError: connection refused"}
    assert checks["database"]["ok"] and checks["storage"]["ok"]


@pytest.mark.django_db
def test_metrics_report_the_queue_and_the_jobs_to_loopback(client):
    project = ProjectFactory()
    for _ in range(3):
        TaskFactory(image=ImageFactory(project=project), project=project)
    TaskFactory(image=ImageFactory(project=project), project=project, status=TaskStatus.DONE)
    body = client.get("/metrics").content.decode()
    assert f'vision_queue_open_tasks{{project="{project.pk}"}} 3.0' in body
    assert f'vision_queue_live_leases{{project="{project.pk}"}} 0.0' in body
    assert "django_http_requests_total_by_method_total" in body


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.VISION_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


@pytest.mark.django_db
def test_metrics_refuse_other_hosts_without_a_token(client):
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.8").status_code == 403
