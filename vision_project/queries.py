"""Small query helpers shared by the apps."""
from __future__ import annotations

import threading
import weakref

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.signals import post_save, pre_save


def unique_or_none(queryset: QuerySet) -> Model | None:
    """The row of a lookup by a unique key (or a primary key), or None. Unlike .first(),
    without an ORDER BY: no order can change which row a unique lookup finds, and compiling
    one costs the hot paths more Python than the query takes to run in the database."""
    return next(iter(queryset.order_by()[:1]), None)


class Columns:
    """A model's columns read by hand-written SQL on the hot paths, and the instances built
    from them as the ORM would (its database converters applied, Model.from_db), without
    compiling a QuerySet per request. `fields` (attnames) limits the columns; the others are
    deferred.

        TASK = Columns(Task, "t")
        cursor.execute(f"SELECT {TASK.sql} FROM labeling_task t WHERE t.id = %s", [pk])
        task = TASK.build(cursor.fetchone())
    """

    def __init__(self, model: type[Model], alias: str, fields: tuple[str, ...] | None = None):
        self.model, self.alias = model, alias
        self.fields = [f for f in model._meta.concrete_fields if fields is None or f.attname in fields]
        self.attnames = [f.attname for f in self.fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in self.fields)
        self.width = len(self.fields)
        self._converters: dict[str, list] = {}

    def _converters_for(self, connection) -> list:
        converters = self._converters.get(connection.alias)
        if converters is None:
            converters = []
            for position, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if found:
                    converters.append((position, column, found))
            self._converters[connection.alias] = converters
        return converters

    def build(self, row, start: int = 0) -> Model:
        """The instance from `row[start:start + width]` (read on the default connection)."""
        values = list(row[start:start + self.width])
        for position, column, converters in self._converters_for(connection):
            value = values[position]
            for converter in converters:
                value = converter(value, column, connection)
            values[position] = value
        return self.model.from_db(connection.alias, self.attnames, values)


# PostgreSQL: the statements each connection has prepared, by SQL text, and the next name's
# number. Keyed weakly by the driver's connection, so a reconnect (a new session, nothing
# prepared) starts empty.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_prepared_lock = threading.Lock()
MAX_PREPARED = 200
INVALID_STATEMENT_NAME = "26000"  # SQLSTATE of EXECUTE with a name the session has not prepared


def execute_prepared(cursor, sql: str, params: list | tuple = ()) -> None:
    """cursor.execute(sql, params) for a statement run on every request: on PostgreSQL
    prepared once per connection, so the server parses and plans it once instead of on
    every call. The first call sends `PREPARE name AS ...; EXECUTE name (...)` (one round
    trip, as before), later ones `EXECUTE name (...)`; `prepared_sql` gives the text back.
    Placeholders are %s; a parameter whose type the statement does not imply needs a cast
    (`CAST(%s AS BIGINT)`). Elsewhere, and with VISION_PREPARED_STATEMENTS off, a plain
    execute. (Prepared statements belong to the session: turn them off behind a pooler in
    transaction mode, or where DISCARD ALL runs between requests.)"""
    db = cursor.db
    if db.vendor != "postgresql" or not settings.VISION_PREPARED_STATEMENTS:
        cursor.execute(sql, params)
        return
    with _prepared_lock:
        state = _prepared.setdefault(db.connection, {"names": {}, "next": 0})
        name = state["names"].get(sql)
        fresh = name is None
        if fresh and len(state["names"]) < MAX_PREPARED:
            name = f"vision_{state['next']}"
            state["next"] += 1
            state["names"][sql] = name
    if name is None:  # this connection has many shapes prepared (long exclude lists): no more
        cursor.execute(sql, params)
        return
    arguments = f" ({', '.join(['%s'] * len(params))})" if params else ""
    if not fresh:
        try:
            cursor.execute(f"EXECUTE {name}{arguments}", params or None)
        except Exception as error:
            if getattr(error.__cause__, "pgcode", None) == INVALID_STATEMENT_NAME:
                # The session lost its prepared statements (DISCARD ALL, a pooler): this
                # call fails, the next ones prepare again.
                with _prepared_lock:
                    _prepared.pop(db.connection, None)
            raise
        return
    parts = sql.split("%s")
    numbered = "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]
    try:
        cursor.execute(f"PREPARE {name} AS {numbered}; EXECUTE {name}{arguments}", params or None)
    except Exception:
        # Prepared or not, the next call prepares it again under a new name.
        with _prepared_lock:
            state["names"].pop(sql, None)
        raise


def prepared_sql(connection, executed: str) -> str:
    """The statement text behind an `EXECUTE name (...)` that execute_prepared sent on this
    connection (as captured by the debug cursor); other SQL unchanged."""
    if not executed.startswith("EXECUTE vision_") or connection.connection is None:
        return executed
    name = executed.split()[1]
    with _prepared_lock:
        names = _prepared.get(connection.connection, {}).get("names", {})
        return next((sql for sql, prepared in names.items() if prepared == name), executed)


def insert_prepared(instance: Model, *, along: tuple[str, list] | None = None) -> None:
    """instance.save(force_insert=True) for a new row on a hot path (a model without its own
    save()): the same pre_save and post_save signals and field preparation (auto_now_add,
    JSON adaptation), the INSERT written once and prepared (execute_prepared) instead of
    compiled on every call. A model whose rows the database fills in beyond the primary key
    (db_default) takes the ORM's way.

    `along` is another write, SQL with its parameters, made with the row: on PostgreSQL in
    the INSERT's own statement (`WITH along AS (...) INSERT ...`, one round trip; it cannot
    see the new row), elsewhere as its own statement just before."""
    model, meta = type(instance), instance._meta
    orm_way = instance.pk is not None or any(not f.primary_key for f in meta.db_returning_fields)
    prefix, prefix_params = "", []
    if along is not None and (orm_way or connection.vendor != "postgresql"):
        with connection.cursor() as cursor:
            execute_prepared(cursor, *along)
    elif along is not None:
        prefix, prefix_params = f"WITH along AS ({along[0]}) ", list(along[1])
    if orm_way:
        instance.save(force_insert=True)
        return
    instance._prepare_related_fields_for_save(operation_name="save")
    pre_save.send(sender=model, instance=instance, raw=False, using=connection.alias, update_fields=None)
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection=connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"{prefix}INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {connection.ops.quote_name(meta.pk.column)}",
            [*prefix_params, *values],
        )
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    post_save.send(sender=model, instance=instance, created=True, update_fields=None, raw=False,
                   using=connection.alias)
