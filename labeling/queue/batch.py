"""The grid mode's claim: many tasks at once for one person, who verifies the proposals of
one class as thumbnails (classification). The editor holds at most two leases (the task
and its prefetch); a grid holds up to GRID_BATCH_MAX, each claimed by the same one-row
statement as the editor's (SKIP LOCKED, best first), so two grids never share a task."""
from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import Project, TaskType

from ..models import Task, TaskStatus
from .services import claim_statement

GRID_BATCH_MAX = 60


def task_claim_batch(*, project: Project, user, size: int, exclude: list[int] = ()) -> list[Task]:
    """Up to `size` tasks leased to the caller for the project's TTL: their own live leases
    first (a reloaded grid gets its tasks back), then the best claimable tasks. Images the
    caller skipped stay out (the grid is first-pass work; the editor brings skips back).
    Raises ValidationError for a detection project or a size out of 1..GRID_BATCH_MAX."""
    if project.task_type != TaskType.CLASSIFICATION:
        raise ValidationError("The grid verifies one class per image: it is for classification projects; "
                              "use the editor for detection.")
    if not 1 <= size <= GRID_BATCH_MAX:
        raise ValidationError({"size": f"A grid holds 1 to {GRID_BATCH_MAX} tasks; got {size}."})
    exclude = list(exclude)
    now = timezone.now()
    tasks = list(Task.objects.filter(project=project, lease_holder=user, status=TaskStatus.OPEN,
                                     lease_expires_at__gt=now).exclude(pk__in=exclude)
                 .order_by("lease_expires_at", "id")[:size])
    expires = now + timedelta(seconds=project.lease_ttl_seconds)
    while len(tasks) < size:
        sql, params = claim_statement(project=project, user=user, exclude=exclude + [t.pk for t in tasks],
                                      now=now, expires=expires)
        task = next(iter(Task.objects.raw(sql, params)), None)
        if task is None:
            break
        tasks.append(task)
    return tasks
