"""Progress of a running job row (ImportJob, ExportJob): written from inside the work."""
from __future__ import annotations

import time
from collections.abc import Callable

from django.db.models import Model
from django.utils import timezone

from .models import JobStatus

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
