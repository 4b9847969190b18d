"""Statements prepared once per PostgreSQL session for the hot paths
(vision_project.queries.execute_prepared): they answer as plain ones, recover from errors and
from a session that lost them, and the setting turns them off."""
import pytest
from django.db import DataError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from vision_project.queries import execute_prepared

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statements_answer_as_plain_ones_and_recover_from_errors():
    def run(sql, params):
        with connection.cursor() as cursor:
            execute_prepared(cursor, sql, params)
            return cursor.fetchall()

    sql = "SELECT %s::int * 2, %s::text"
    assert run(sql, [2, "a"]) == [(4, "a")]
    assert run(sql, [3, "b"]) == [(6, "b")]  # now an EXECUTE of the prepared one
    # A statement that fails when it first runs is prepared again on the next call.
    divide = "SELECT 10 / %s::int"
    with pytest.raises(DataError), transaction.atomic():
        run(divide, [0])
    assert run(divide, [5]) == [(2,)]
    assert run(divide, [2]) == [(5,)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_a_session_that_lost_its_prepared_statements_prepares_them_again():
    def run():
        with connection.cursor() as cursor:
            execute_prepared(cursor, "SELECT %s::int + 1", [1])
            return cursor.fetchone()[0]

    assert run() == 2
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(OperationalError), transaction.atomic():
        run()
    assert run() == 2


def test_with_prepared_statements_off_the_statement_runs_as_written(settings):
    settings.VISION_PREPARED_STATEMENTS = False
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        execute_prepared(cursor, "SELECT %s + 1", [1])
        execute_prepared(cursor, "SELECT %s + 1", [1])
        assert cursor.fetchone()[0] == 2
    assert [q["sql"] for q in queries.captured_queries] == ["SELECT 1 + 1"] * 2


@pytest.mark.parametrize("prepared", [True, False])
def test_insert_prepared_makes_its_along_write_with_the_row(settings, prepared):
    from core.models import LabelClass, Project
    from tests.labeling.test_queue import make_project
    from vision_project.queries import insert_prepared

    settings.VISION_PREPARED_STATEMENTS = prepared
    project = make_project()
    label_class = LabelClass(project=project, name="oak", order=9)
    with CaptureQueriesContext(connection) as queries:
        insert_prepared(label_class, along=(
            f'UPDATE "{Project._meta.db_table}" SET description = %s WHERE id = %s', ["touched", project.pk]))
    assert LabelClass.objects.get(pk=label_class.pk).name == "oak"
    assert Project.objects.get(pk=project.pk).description == "touched"
    # PostgreSQL: one statement (WITH along AS (UPDATE ...) INSERT ...); elsewhere two.
    assert len(queries.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
