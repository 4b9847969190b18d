"""Every list in the API is a page: `?limit=&offset=`, answered as
{"count", "next", "previous", "results"}. A list view mixes in PagedList: its
pagination_class is what drf-spectacular reads to put the page shape and the two
parameters in the schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class Pages(LimitOffsetPagination):
    default_limit = 50
    max_limit = 1000


class PagedList:
    pagination_class = Pages

    def page_response(self, request, rows, serialize: Callable[[Sequence], object]) -> Response:
        """The page of rows (a queryset or list) that limit and offset ask for, serialized."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(serialize(page))
