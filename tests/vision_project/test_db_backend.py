"""The PostgreSQL backend's health check (vision_project.postgresql): a live idle session
passes without a statement, one the server ended is found and replaced before the
request's first query."""
import os
import resource
import time

import psycopg2
import pytest
from django.db import connections

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def own_connection():
    """A second connection of the default database's backend, outside the test's transaction."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _admin():
    params = connections["default"].get_connection_params()
    admin = psycopg2.connect(**params)
    admin.autocommit = True
    return admin


def _usable_without_a_statement(wrapper) -> bool:
    """wrapper.is_usable(), and whether the server saw no statement from it meanwhile (the
    session's last statement, in pg_stat_activity, is still the marker run before)."""
    marker = "SELECT 'marker of the last statement'"
    with wrapper.cursor() as cursor:
        cursor.execute(marker)
        pid = wrapper.connection.get_backend_pid()
    usable = wrapper.is_usable()
    admin = _admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
            return usable and cursor.fetchone()[0] == marker
    finally:
        admin.close()


def test_the_configured_backend_is_ours():
    assert type(connections["default"]).__module__ == "vision_project.postgresql.base"


def test_a_live_idle_session_is_usable_without_a_statement(own_connection):
    assert _usable_without_a_statement(own_connection)


def test_a_session_whose_descriptor_is_past_1024_is_checked_the_same_way():
    """A busy web process holds many descriptors; select() refuses those past 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    wrapper = connections.create_connection("default")
    try:
        wrapper.ensure_connection()
        assert wrapper.connection.fileno() > 1024
        assert _usable_without_a_statement(wrapper)
    finally:
        wrapper.close()
        for descriptor in filler:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_session_the_server_ended_is_replaced_at_the_next_request(own_connection):
    own_connection.health_check_enabled = True
    pid = own_connection.connection.get_backend_pid()
    admin = _admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and own_connection.is_usable():
            time.sleep(0.05)
        assert not own_connection.is_usable()
    finally:
        admin.close()
    # What a request's start does (close_old_connections), then its first query.
    own_connection.close_if_unusable_or_obsolete()
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
