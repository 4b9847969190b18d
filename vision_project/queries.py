"""Small query helpers shared by the apps."""
from __future__ import annotations

from django.db.models import Model, QuerySet


def unique_or_none(queryset: QuerySet) -> Model | None:
    """The row of a lookup by a unique key (or a primary key), or None. Unlike .first(),
    without an ORDER BY: no order can change which row a unique lookup finds, and compiling
    one costs the hot paths more Python than the query takes to run in the database."""
    return next(iter(queryset.order_by()[:1]), None)
