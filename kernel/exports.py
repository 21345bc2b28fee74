"""CSV downloads, streamed so a long history never sits in memory.

Every cell is inert (SECURITY.md S25): text a spreadsheet would run as a formula gets a
leading single quote. Exports are private to whoever asked (S28): never cached on the way.

An export holds at most `EXPORT_MAX_ROWS` items (licenses, servers, events; default 100,000):
streaming 200,000 rows held a web worker for 11 s, and near 550,000 the worker timeout killed
it mid-file. A larger one is refused before anything is read, with a page (or, to a client
asking for JSON, a problem+json `validation_error`) saying to narrow the filter.
"""

import csv
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from .problems import problem_response

# What spreadsheets treat as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def inert_cell(value: Any) -> Any:
    """The value as a spreadsheet may safely open it: formulas in text become plain text."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([inert_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def export_too_large(counted: QuerySet[Any]) -> bool:
    """Whether `counted` holds more than EXPORT_MAX_ROWS rows: counted no further than that."""
    limit: int = settings.EXPORT_MAX_ROWS
    return counted.order_by().values("pk")[: limit + 1].count() > limit


def too_large_response(request: HttpRequest, back: str) -> HttpResponse:
    """The answer to an export above EXPORT_MAX_ROWS: narrow the filter (`back`: the list)."""
    limit: int = settings.EXPORT_MAX_ROWS
    detail = (
        f"This export would hold more than {limit:,} rows, the most one download may hold. "
        "Narrow the filter (a shorter period, one action or state, a search) and download again."
    )
    accept = request.headers.get("Accept", "")
    if "json" in accept and "html" not in accept:
        return problem_response(request, 400, "validation_error", detail, max_rows=limit)
    response = render(
        request, "export_too_large.html", {"detail": detail, "back": back}, status=400
    )
    response["Cache-Control"] = "private, no-store"
    return response


def csv_export(
    request: HttpRequest,
    filename: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    counted: QuerySet[Any],
    back: str,
) -> HttpResponse | StreamingHttpResponse:
    """`csv_response`, unless `counted` (the items the rows come from) holds more than
    EXPORT_MAX_ROWS: then `too_large_response`, and `rows` is never read."""
    if export_too_large(counted):
        return too_large_response(request, back)
    return csv_response(filename, header, rows)
