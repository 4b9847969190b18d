"""The lifecycle of every long job row (ImportJob, ExportJob, TrainingRun, PrelabelRun,
EmbeddingRun: any concrete subclass of core.models.Job), in one place.

- claim: QUEUED -> RUNNING with a conditional update, once, so a redelivered message finds
  nothing to claim;
- progress and heartbeat from inside the work (job_progress_writer), or from a side thread
  (JobPulse) for work that blocks for long;
- terminal writes only from RUNNING (job_finish, job_fail), so a late write cannot clobber a
  failure or cancel recorded meanwhile;
- cancel (job_cancel) and the stale sweep (stale_jobs_fail) for workers that died;
- dispatch (job_dispatch_on_commit) records when the broker took the task message, and the
  re-dispatch sweep (queued_jobs_redispatch) sends again what never reached it (a broker
  outage) or was lost there (a broker restart without persistence): the row is the outbox.
  A duplicate message is harmless, the claim happens once.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from vision_project import enqueue as broker

from .models import Job, JobStatus

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


class JobStopped(Exception):
    """The job was cancelled or marked failed (stale heartbeat) while it ran."""


def job_progress_writer(model: type[Model], job_id: int, total: int, *, cap: float = 1.0,
                        count_field: str | None = None) -> Callable[[int], None]:
    """A callback taking the number of items done: it writes progress (at most `cap`),
    the heartbeat and, with `count_field`, the count, at most once every
    PROGRESS_EVERY_S; it raises JobStopped when the row is no longer RUNNING or a cancel
    was asked for, so the work stops instead of finishing for nobody."""
    last = 0.0

    def write(done: int) -> None:
        nonlocal last
        if time.monotonic() - last < PROGRESS_EVERY_S:
            return
        last = time.monotonic()
        fields = {"progress": min(done / total, cap) if total else 0.0, "heartbeat_at": timezone.now()}
        if count_field:
            fields[count_field] = done
        if not model.objects.filter(pk=job_id, status=JobStatus.RUNNING, cancel_requested=False).update(**fields):
            raise JobStopped()

    return write


def job_models() -> list[type[Job]]:
    """Every installed job table: the concrete subclasses of Job, whichever app holds them."""
    return [model for model in apps.get_models() if issubclass(model, Job)]


def stale_jobs_fail(*, now=None) -> int:
    """Mark running jobs whose heartbeat went silent as failed; return how many.

    A worker killed mid-run cannot write its own failure, so this sweep does. The write
    is conditional on RUNNING and on the stale heartbeat, so a job that just beat or
    finished is left alone. Failed runs can be retried; nothing else is touched.
    """
    now = now or timezone.now()
    cutoff = now - settings.VISION_JOB_STALE_AFTER
    failed = 0
    for model in job_models():
        failed += model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=JobStatus.FAILED,
            error="The worker stopped sending heartbeats (killed or lost); the job was marked failed.",
            finished_at=now,
        )
    return failed


def job_claim(model, pk: int, *, message: str = "") -> bool:
    """QUEUED -> RUNNING, once: a redelivered task message finds nothing to claim."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, status=JobStatus.QUEUED, cancel_requested=False).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, message=message
        )
    )


def job_finish(model, pk: int, status: str, **fields) -> bool:
    """A terminal write, only from RUNNING (a stale sweep or a cancel recorded first wins)."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(
            status=status, finished_at=now, heartbeat_at=now, **fields
        )
    )


def job_fail(model, pk: int, exc: BaseException, *, error: str | None = None) -> None:
    """Record ``exc`` (call from its except block) as the job's failure: ``error`` or the
    exception's type and message, and the traceback."""
    logger.exception("%s %s failed", model.__name__, pk)
    job_finish(
        model, pk, JobStatus.FAILED,
        error=(error or f"{type(exc).__name__}: {exc}")[:5000], traceback=traceback.format_exc()[-20000:],
    )


def job_run(model, run_id: int, *, claim_message: str, work: Callable, summary: Callable[[dict], str],
            cancelled: str = "Cancelled: {summary}", after: Callable | None = None):
    """The whole life of a run whose work reports how far it got: claim the row (None when
    there was nothing to claim), run ``work(run, should_stop) -> stats`` under a JobPulse, and
    finish it CANCELLED or SUCCEEDED with ``stats``, their ``processed`` count and the message
    ``summary(stats)`` (``stats["stopped"]`` says a stop was asked). ``after(run, stats)`` runs once
    the run is finished; an exception anywhere is the run's failure. Returns the row as it ended."""
    if not job_claim(model, run_id, message=claim_message):
        return None
    run = model.objects.select_related("project").get(pk=run_id)
    try:
        with JobPulse(model, run_id) as pulse:
            stats = work(run, pulse.should_stop)
        done = summary(stats)
        if stats["stopped"]:
            job_finish(model, run_id, JobStatus.CANCELLED, stats=stats, processed=stats["processed"],
                       message=cancelled.format(summary=done))
        else:
            job_finish(model, run_id, JobStatus.SUCCEEDED, progress=1.0, stats=stats,
                       processed=stats["processed"], message=done)
        if after is not None:
            after(run, stats)
    except Exception as exc:
        job_fail(model, run_id, exc)
    run.refresh_from_db()
    return run


class JobPulse:
    """Beats a running job's heartbeat from a side thread and watches for a cancel request or
    an outside failure, so a slow training step neither looks dead nor misses a cancel.

    ``should_stop()`` is cheap (no query), so backends may poll it every batch.
    """

    def __init__(self, model, pk: int) -> None:
        self.model, self.pk = model, pk
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"pulse-{model.__name__}-{pk}", daemon=True)

    def __enter__(self) -> JobPulse:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def beat(self) -> None:
        """Refresh the heartbeat; flag a stop when the row was cancelled or ended elsewhere."""
        alive = self.model.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
        if not alive or self.model.objects.filter(pk=self.pk, cancel_requested=True).exists():
            self._stop.set()

    def _loop(self) -> None:
        try:
            while not self._done.wait(settings.VISION_JOB_HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except Exception:  # a lost database connection must not kill the job itself
                    logger.exception("heartbeat of %s %s failed", self.model.__name__, self.pk)
        finally:
            connection.close()  # this thread's own connection


def job_cancel(job):
    """Ask any job row to stop: a queued one is cancelled at once, a running one is flagged and
    stops at its next check (it records CANCELLED itself); finished ones are left as they are."""
    rows = type(job).objects.filter(pk=job.pk)
    rows.filter(status=JobStatus.QUEUED).update(status=JobStatus.CANCELLED, cancel_requested=True,
                                                finished_at=timezone.now(), message="Cancelled before it started")
    rows.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_dispatch(model, pk: int) -> bool:
    """Send the job's task now and stamp ``dispatched_at``; False (logged) when the broker is
    unreachable, leaving the row queued for the re-dispatch sweep."""
    try:
        broker.enqueue(model.task_name, pk, task_id=_task_id(model, pk))
    except (BrokerUnreachable, OSError) as exc:
        logger.warning("%s %s stays queued: the broker is unreachable (%s)", model.__name__, pk, exc)
        return False
    model.objects.filter(pk=pk).update(dispatched_at=timezone.now())
    return True


def _task_id(model, pk: int) -> str | None:
    """The task id a job kind keeps (to revoke its task), so a re-sent message carries it too."""
    if not any(field.name == "celery_task_id" for field in model._meta.fields):
        return None
    return model.objects.filter(pk=pk).values_list("celery_task_id", flat=True).first() or None


def job_dispatch_on_commit(job) -> None:
    """Send the job's task once its row commits, so the worker finds the row it is sent for."""
    model, pk = type(job), job.pk
    transaction.on_commit(lambda: job_dispatch(model, pk))


def job_dispatched(job) -> bool:
    """Whether the broker has taken the job (or a worker already picked it up)."""
    return type(job).objects.filter(pk=job.pk).filter(
        Q(dispatched_at__isnull=False) | ~Q(status=JobStatus.QUEUED)
    ).exists()


def queued_jobs_redispatch(*, now=None) -> int:
    """Send again the task of every queued job whose message never reached the broker (older
    than VISION_JOB_DISPATCH_GRACE, so a request's own on-commit send is not raced) or was
    sent longer ago than VISION_JOB_RESEND_AFTER (a broker restart may have lost it).
    Return how many were sent."""
    now = now or timezone.now()
    sent = 0
    for model in job_models():
        waiting = model.objects.filter(status=JobStatus.QUEUED, cancel_requested=False).filter(
            Q(dispatched_at__isnull=True, created_at__lt=now - settings.VISION_JOB_DISPATCH_GRACE)
            | Q(dispatched_at__lt=now - settings.VISION_JOB_RESEND_AFTER)
        )
        for pk in waiting.values_list("pk", flat=True):
            if not job_dispatch(model, pk):
                return sent  # the broker is still away: the next sweep tries again
            sent += 1
    return sent
