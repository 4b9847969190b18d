"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS Django asks a reused connection `SELECT 1` at the start of every
request: on the queue's hot paths, one statement in twelve. A PostgreSQL session that the
server ended (a restart, pg_terminate_backend, an idle timeout, a pooler closing it) has
sent its FATAL message or its end of stream to the socket by then, so an idle session whose
socket has nothing to read is alive; only one with something waiting is asked the question
the usual way. (A peer gone without a word, a cut network, hangs a `SELECT 1` as long as it
hangs the request's first query: the check never caught that.)
"""
from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        raw = self.connection
        if raw is None or raw.closed:
            return False
        # poll, not select: a busy process's descriptors pass select's limit of 1024.
        poller = select.poll()
        try:
            poller.register(raw.fileno(), select.POLLIN)
            waiting = poller.poll(0)
        except (OSError, ValueError):
            return False
        if not waiting:
            return True
        return super().is_usable()
