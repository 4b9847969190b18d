"""Liveness, readiness and Prometheus metrics.

- ``/healthz/``: the process answers (no dependency is asked, so a database outage does not
  make an orchestrator restart every web process at once).
- ``/readyz/``: the database, the broker and the storage answer; 503 naming the ones that do
  not, so a load balancer stops sending traffic until they are back.
- ``/metrics``: django-prometheus' request and database metrics plus VISION's own gauges, read
  from the database at scrape time (so every web process reports the same figures). Open to
  a bearer token (VISION_METRICS_TOKEN) or, without one, to loopback callers only.
"""
from __future__ import annotations

import hmac
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpResponseForbidden, JsonResponse
from django.utils import timezone
from django_prometheus.exports import ExportToDjangoView
from prometheus_client.core import REGISTRY, GaugeMetricFamily

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1"}


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from vision_project.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


def _storage() -> None:
    default_storage.exists("readyz-probe")


CHECKS = {"database": _database, "broker": _broker, "storage": _storage}


def readyz(request):
    results, ready = {}, True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # any failure of a dependency means not ready, whatever its kind
            ready = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            logger.warning("readiness: %s is unavailable: %s", name, exc)
        else:
            results[name] = {"ok": True, "ms": round(1000 * (time.monotonic() - started), 1)}
        if name == "database" and not ready:
            connection.close()  # a broken connection must not be reused by the next request
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": results},
                        status=200 if ready else 503)


def metrics(request):
    token = settings.VISION_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given, token):
            return HttpResponseForbidden("A valid bearer token is required.")
    elif request.META.get("REMOTE_ADDR") not in LOOPBACK:
        return HttpResponseForbidden("Metrics are served to loopback callers unless VISION_METRICS_TOKEN is set.")
    return ExportToDjangoView(request)


class VisionCollector:
    """Gauges of the work itself, queried when Prometheus scrapes."""

    NAMES = ("vision_queue_open_tasks", "vision_queue_live_leases", "vision_jobs", "vision_job_failures_last_hour",
             "vision_prelabel_images_per_second", "vision_training_run_seconds")

    def describe(self):
        """The names, without a query (the registry asks at registration, before any database)."""
        for name in self.NAMES:
            yield GaugeMetricFamily(name, name)

    def collect(self):
        from core.jobs import job_models
        from core.models import JobStatus
        from labeling.models import Task, TaskStatus
        from training.models import PrelabelRun, TrainingRun

        now = timezone.now()
        open_tasks = GaugeMetricFamily("vision_queue_open_tasks", "Tasks open for labeling, per project",
                                       labels=["project"])
        leases = GaugeMetricFamily("vision_queue_live_leases", "Open tasks leased to an annotator now",
                                   labels=["project"])
        rows = Task.objects.filter(status=TaskStatus.OPEN).values("project_id").annotate(
            open=Count("pk"), leased=Count("pk", filter=Q(lease_expires_at__gt=now)))
        for row in rows:
            open_tasks.add_metric([str(row["project_id"])], row["open"])
            leases.add_metric([str(row["project_id"])], row["leased"])
        yield open_tasks
        yield leases

        jobs = GaugeMetricFamily("vision_jobs", "Job rows by kind and status", labels=["kind", "status"])
        for model in job_models():
            for row in model.objects.values("status").annotate(n=Count("pk")):
                jobs.add_metric([model.__name__, row["status"]], row["n"])
        yield jobs
        failures = GaugeMetricFamily("vision_job_failures_last_hour", "Jobs failed in the last hour",
                                     labels=["kind"])
        for model in job_models():
            failed = model.objects.filter(status=JobStatus.FAILED, finished_at__gte=now - timedelta(hours=1))
            failures.add_metric([model.__name__], failed.count())
        yield failures

        prelabel = GaugeMetricFamily("vision_prelabel_images_per_second",
                                     "Images scored per second by the latest finished prelabel run")
        run = PrelabelRun.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at").first()
        if run is not None and run.started_at and run.finished_at:
            seconds = (run.finished_at - run.started_at).total_seconds()
            prelabel.add_metric([], (run.stats or {}).get("written", 0) / seconds if seconds > 0 else 0.0)
        yield prelabel
        training = GaugeMetricFamily("vision_training_run_seconds", "Wall time of the latest finished training run")
        run = TrainingRun.objects.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at").first()
        if run is not None and run.started_at and run.finished_at:
            training.add_metric([], (run.finished_at - run.started_at).total_seconds())
        yield training


REGISTRY.register(VisionCollector())  # once: the module is imported once, by the URL conf
