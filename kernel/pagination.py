from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated_response(
    request: Request,
    view: Any,
    items: QuerySet[Any, Any] | Sequence[Any],
    render: Callable[[list[Any]], Any],
    *,
    page_size: int | None = None,
) -> Response:
    """One page of `items` in the envelope every list answers with (see schema.paginated)."""
    paginator = Pagination()
    if page_size is not None:
        paginator.page_size = page_size
    # DRF pages any sequence (through Django's Paginator); the stubs accept only a QuerySet.
    page = paginator.paginate_queryset(items, request, view=view)  # type: ignore[arg-type]
    # Never None: the paginator always has a page size (a default, or the caller's).
    assert page is not None
    return paginator.get_paginated_response(render(page))
