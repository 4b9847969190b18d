"""Small query helpers shared by the apps."""
from __future__ import annotations

from django.db.models import Model, QuerySet


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

    def build(self, row, start: int = 0, connection=None) -> Model:
        """The instance from `row[start:start + width]`."""
        from django.db import connection as default_connection

        connection = connection or default_connection
        values = list(row[start:start + self.width])
        for position, column, converters in self._converters_for(connection):
            value = values[position]
            for converter in converters:
                value = converter(value, column, connection)
            values[position] = value
        return self.model.from_db(connection.alias, self.attnames, values)
