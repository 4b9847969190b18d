"""Enqueue a Celery task by its registered name.

Services call this instead of importing their app's tasks module, so imports point one way:
tasks import services, never the reverse. The task's own options (queue routes, eager mode
in tests) apply as if it had been called directly.
"""
from __future__ import annotations

from celery import current_app
from django.db import transaction


def enqueue(name: str, *args, task_id: str | None = None) -> None:
    """Send task ``name`` with ``args`` now."""
    options = {"task_id": task_id} if task_id else {}
    current_app.signature(name, args=args).apply_async(**options)


def enqueue_on_commit(name: str, *args, task_id: str | None = None, robust: bool = False) -> None:
    """Send task ``name`` once the current transaction commits, so the worker finds the rows
    it is sent for. ``robust``: a broker failure is logged instead of failing the commit's
    other callbacks."""
    transaction.on_commit(lambda: enqueue(name, *args, task_id=task_id), robust=robust)
