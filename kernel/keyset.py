"""Seek (keyset) pagination: a page is found from the sort values of the row it starts after,
so the last page of a long list costs what the first does (an OFFSET reads and throws away
every row it skips), and a row added meanwhile shifts nothing.

    KEYS = (Key("created_at", descending=True), Key("pk", descending=True))
    page = portal_page(request, events, KEYS, size=50, tag="history")
    {% include "_keyset_pagination.html" %}

The keys' last column must be unique (the pk): it breaks every tie. Key columns hold no NULL
(the lists that use this sort by non-null columns or coalesced counts).

A cursor is the boundary row's key values and the direction to read from it, signed: a
tampered or stale one (another sort) is refused, and the portal falls back to page 1 while the
API answers `400 validation_error`. Counts stop at `COUNT_CAP` rows ("10,000+"), so no page
ever counts a whole large table.
"""

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.http import HttpRequest, QueryDict
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

COUNT_CAP = 10_000
_SALT = "kernel.keyset"
# The query parameters this module owns; other parameters (filters, sort) pass through links.
NAV_PARAMS = ("page", "after", "before", "last", "cursor")


class InvalidCursor(ValueError):
    """A cursor this list did not hand out (tampered, truncated, or for another sort)."""


@dataclass(frozen=True)
class Key:
    """One column of the sort: a lookup usable in filter() and order_by() (a field, a related
    field like "customer__name", or an annotation), read from each row along its "__" path."""

    field: str
    descending: bool = False

    def read(self, row: Any) -> Any:
        value = row
        for part in self.field.split("__"):
            value = getattr(value, part)
        return value

    @property
    def order(self) -> str:
        return f"-{self.field}" if self.descending else self.field

    @property
    def reverse_order(self) -> str:
        return self.field if self.descending else f"-{self.field}"


# --- Cursors ------------------------------------------------------------------------------------


def _dump_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} in a cursor")


def _load_value(raw: Any) -> Any:
    if isinstance(raw, dict) and len(raw) == 1:
        (kind, text), *_ = raw.items()
        if isinstance(text, str):
            if kind == "t" and (moment := parse_datetime(text)) is not None:
                return moment
            if kind == "d" and (day := parse_date(text)) is not None:
                return day
            if kind == "u":
                return uuid.UUID(text)
        raise InvalidCursor("unknown value in cursor")
    if raw is None or isinstance(raw, bool | int | str):
        return raw
    raise InvalidCursor("unknown value in cursor")


def encode_cursor(tag: str, keys: Sequence[Key], row: Any, *, backwards: bool = False) -> str:
    """The cursor of `row`: read forwards (the rows after it) or backwards (those before)."""
    payload = {
        "s": tag,
        "b": backwards,
        "v": [_dump_value(key.read(row)) for key in keys],
    }
    return signing.dumps(payload, salt=_SALT, compress=True)


def decode_cursor(tag: str, keys: Sequence[Key], cursor: str) -> tuple[list[Any], bool]:
    """The key values and direction of a cursor handed out for `tag`; InvalidCursor if not."""
    try:
        payload = signing.loads(cursor, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad signature") from exc
    if not isinstance(payload, dict) or payload.get("s") != tag:
        raise InvalidCursor("cursor of another list")
    values = payload.get("v")
    if not isinstance(values, list) or len(values) != len(keys):
        raise InvalidCursor("cursor of another sort")
    try:
        return [_load_value(v) for v in values], bool(payload.get("b"))
    except ValueError as exc:
        raise InvalidCursor("bad value in cursor") from exc


# --- Seeking ------------------------------------------------------------------------------------


def _beyond(keys: Sequence[Key], values: Sequence[Any], *, backwards: bool) -> Q:
    """Rows strictly after `values` in the keys' order (before them when `backwards`):
    (k0 > v0) OR (k0 = v0 AND k1 > v1) OR ... with > and < as each key's direction says."""
    condition = Q()
    equal: dict[str, Any] = {}
    for key, value in zip(keys, values, strict=True):
        greater = key.descending == backwards
        condition |= Q(**equal, **{f"{key.field}__{'gt' if greater else 'lt'}": value})
        equal[f"{key.field}__exact"] = value
    # The leading column's bound on its own, so an index on it is used as a range.
    first = keys[0]
    lead = "gte" if first.descending == backwards else "lte"
    return Q(**{f"{first.field}__{lead}": values[0]}) & condition


@dataclass
class Window:
    """Rows of one page, in the list's order, and whether there are more either side."""

    rows: list[Any]
    has_previous: bool
    has_next: bool


@dataclass(frozen=True)
class Merged:
    """One list read from disjoint querysets that each carry the sort's key fields and can
    each be walked in that order on an index of their own (licenses by term end, licenses by
    care end): a page reads at most size + 1 rows of each and merges them. One query per part;
    every key of the sort runs in the same direction."""

    parts: tuple[QuerySet[Any], ...]


@dataclass(frozen=True)
class AnyOf:
    """The rows of `queryset` that meet any of `conditions`, each of which an index walks in the
    sort's order (orders a partner placed, orders placed for it): an OR of them would have the
    planner read every such row, or walk the sort's index filtering every tenant's rows. A page
    reads at most size + 1 ids on each condition's index, then those rows once, with what
    `queryset` joins and prefetches, merged and ordered by the database (its collation, each
    key's direction). The conditions may overlap: a row meeting two is listed once. Two queries
    per page whatever the number of rows: the ids, then their rows."""

    queryset: QuerySet[Any]
    conditions: tuple[Q, ...]

    def filter(self, *args: Any, **kwargs: Any) -> "AnyOf":
        return AnyOf(self.queryset.filter(*args, **kwargs), self.conditions)

    def parts(self) -> list[QuerySet[Any]]:
        return [self.queryset.filter(condition) for condition in self.conditions]

    def disjoint_parts(self) -> list[QuerySet[Any]]:
        """The parts with the rows of earlier parts left out, to count each row once."""
        parts = []
        for n, condition in enumerate(self.conditions):
            part = self.queryset.filter(condition)
            for earlier in self.conditions[:n]:
                part = part.exclude(earlier)
            parts.append(part)
        return parts


Source = QuerySet[Any] | Merged | AnyOf


def _read_any_of(
    source: AnyOf,
    keys: Sequence[Key],
    *,
    size: int,
    start: int,
    values: Sequence[Any] | None,
    backwards: bool,
) -> list[Any]:
    order = [key.reverse_order if backwards else key.order for key in keys]
    wanted = start + size + 1
    model = source.queryset.model
    found = []
    for part in source.parts():
        if values is not None:
            part = part.filter(_beyond(keys, values, backwards=backwards))
        # The first rows on this condition's index, as a plain subquery of ids: a compound
        # statement may not hold LIMIT itself on every database (SQLite).
        first = part.order_by(*order).values("pk")[:wanted]
        found.append(model._default_manager.filter(pk__in=first).order_by().values("pk"))
    union = found[0].union(*found[1:]) if len(found) > 1 else found[0]
    # The ids as values, not as a subquery: with a subquery the planner may hash it against a
    # scan of the whole table rather than look each row up.
    ids = list(union.values_list("pk", flat=True))
    rows = source.queryset.filter(pk__in=ids).order_by(*order)
    return _fetch(rows, size, start)


def _read(
    source: Source,
    keys: Sequence[Key],
    *,
    size: int,
    start: int = 0,
    values: Sequence[Any] | None = None,
    backwards: bool = False,
) -> list[Any]:
    """size + 1 rows from `start` in the keys' order (reversed when `backwards`), after
    `values` when given; without prefetching (see _prefetched)."""
    if isinstance(source, QuerySet):
        queryset = source
        if values is not None:
            queryset = queryset.filter(_beyond(keys, values, backwards=backwards))
        order = [key.reverse_order if backwards else key.order for key in keys]
        return _fetch(queryset.order_by(*order), size, start)
    if isinstance(source, AnyOf):
        return _read_any_of(
            source, keys, size=size, start=start, values=values, backwards=backwards
        )
    descending = {key.descending for key in keys}
    if len(descending) != 1:
        raise ValueError("a merged list sorts every key in one direction")
    rows = [
        row
        for part in source.parts
        for row in _read(part, keys, size=start + size, values=values, backwards=backwards)
    ]
    rows.sort(
        key=lambda row: tuple(key.read(row) for key in keys), reverse=descending.pop() != backwards
    )
    return rows[start : start + size + 1]


def seek(
    source: Source,
    keys: Sequence[Key],
    *,
    size: int,
    values: Sequence[Any] | None = None,
    backwards: bool = False,
    last: int | None = None,
) -> Window:
    """One page: the `size` rows after `values` (before them when `backwards`), the first page
    when there are no values, or the final `last` rows. One query (one per part of a merged
    list), reading at most size+1 rows."""
    if last is not None:
        rows = _read(source, keys, size=last, backwards=True)
        more = len(rows) > last
        rows = _prefetched(source, rows[:last])
        rows.reverse()
        return Window(rows, has_previous=more, has_next=False)
    if values is None:
        rows = _read(source, keys, size=size)
        return Window(_prefetched(source, rows[:size]), False, has_next=len(rows) > size)
    rows = _read(source, keys, size=size, values=values, backwards=backwards)
    if backwards:
        more = len(rows) > size
        rows = _prefetched(source, rows[:size])
        rows.reverse()
        return Window(rows, has_previous=more, has_next=True)
    return Window(_prefetched(source, rows[:size]), True, has_next=len(rows) > size)


def _fetch(queryset: QuerySet[Any], size: int, start: int = 0) -> list[Any]:
    """size + 1 rows (the one more says whether there is a next page), without prefetching:
    what the page's rows need is fetched for those rows only (see _prefetched)."""
    return list(queryset.prefetch_related(None)[start : start + size + 1])


def _prefetched(source: Source, rows: list[Any]) -> list[Any]:
    if isinstance(source, QuerySet):
        queryset = source
    elif isinstance(source, AnyOf):
        queryset = source.queryset
    else:
        queryset = source.parts[0]
    lookups = queryset._prefetch_related_lookups  # type: ignore[attr-defined]  # not in the stubs
    if lookups and rows:
        prefetch_related_objects(rows, *lookups)
    return rows


def capped_count(source: Source, cap: int = COUNT_CAP) -> int:
    """How many rows, counting no further than cap + 1 (more than `cap` answers cap + 1)."""
    if isinstance(source, Merged | AnyOf):  # one query: the parts' rows, appended, up to cap + 1
        parts = source.parts if isinstance(source, Merged) else source.disjoint_parts()
        first, *others = (part.order_by().values("pk") for part in parts)
        return first.union(*others, all=True)[: cap + 1].count()
    return source.order_by().values("pk")[: cap + 1].count()


# --- The portal's pages ---------------------------------------------------------------------------


@dataclass
class Page(Sequence[Any]):
    """A portal page of rows with its navigation links (first, previous, next, last)."""

    rows: list[Any]
    number: int | None  # None: somewhere past the counted part of the list
    total: int  # capped: COUNT_CAP + 1 means "more than COUNT_CAP"
    size: int
    first_url: str | None
    previous_url: str | None
    next_url: str | None
    last_url: str | None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> Any:
        return self.rows[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    @property
    def counted(self) -> bool:
        return self.total <= COUNT_CAP

    @property
    def num_pages(self) -> int | None:
        return max(math.ceil(self.total / self.size), 1) if self.counted else None

    @property
    def count_label(self) -> str:
        return f"{self.total:,}" if self.counted else f"{COUNT_CAP:,}+"

    @property
    def paginator(self) -> "Page":
        """Django's Page answers `page.paginator.count` and `.num_pages`; so does this one."""
        return self

    @property
    def count(self) -> int:  # type: ignore[override]
        return self.total

    @property
    def has_other_pages(self) -> bool:
        return self.previous_url is not None or self.next_url is not None


def _link(query: QueryDict, **nav: object) -> str:
    params = query.copy()
    for name in NAV_PARAMS:
        params.pop(name, None)
    for name, value in nav.items():
        if name != "page" and value is not None:
            params[name] = str(value)
    # The page number goes last: it only labels the page, the cursor finds it.
    if nav.get("page") is not None:
        params["page"] = str(nav["page"])
    return f"?{params.urlencode()}"


def _int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number >= 1 else None


def portal_page(
    request: HttpRequest,
    queryset: Source,
    keys: Sequence[Key],
    *,
    size: int,
    tag: str,
    count_queryset: QuerySet[Any] | None = None,
    load: Callable[[list[Any]], list[Any]] | None = None,
) -> Page:
    """The page the request's `after` / `before` cursor, `last=1` or `page=N` asks for.

    `count_queryset` (default: `queryset`) is what is counted, capped; give the bare rows when
    `queryset` carries costly annotations. `load` turns the page's rows into what is shown
    (e.g. computes per-row figures for these rows only), keeping their order. A cursor that
    does not verify shows page 1. A bare `page=N` (a typed address, an old link) is served by
    offset within the counted part of the list, and past it as the last page.
    """
    query = request.GET
    count = capped_count(count_queryset if count_queryset is not None else queryset)
    pages = max(math.ceil(count / size), 1) if count <= COUNT_CAP else None
    number = _int(query.get("page"))
    window: Window | None = None
    for param in ("after", "before"):
        cursor = query.get(param)
        if cursor:
            try:
                values, backwards = decode_cursor(tag, keys, cursor)
                if backwards != (param == "before"):
                    raise InvalidCursor("cursor read the other way")
            except InvalidCursor:
                number = None
                break
            window = seek(queryset, keys, size=size, values=values, backwards=backwards)
            break
    if window is None and (query.get("last") or (number and pages and number >= pages)):
        # The last page holds the remainder of a counted list, so it lines up with the pages
        # reached going forwards.
        tail = count - (pages - 1) * size if pages else size
        window = seek(queryset, keys, size=size, last=tail or size)
        number = pages
    elif window is None and number and number > 1 and (number - 1) * size < COUNT_CAP:
        rows = _read(queryset, keys, size=size, start=(number - 1) * size)
        window = Window(_prefetched(queryset, rows[:size]), True, has_next=len(rows) > size)
    elif window is None:
        window = seek(queryset, keys, size=size)
        number = 1
    if window.rows == [] and window.has_previous and not window.has_next:
        # A cursor past the end (rows deleted meanwhile): show the last page instead.
        window = seek(queryset, keys, size=size, last=size)
        number = pages
    if number is not None and pages is not None:
        number = min(number, pages)
    if not window.has_previous:
        number = 1
    rows = window.rows
    first_row, last_row = (rows[0], rows[-1]) if rows else (None, None)
    previous_number = number - 1 if number and number > 1 else None
    next_number = number + 1 if number else None
    return Page(
        rows=load(rows) if load and rows else rows,
        number=number,
        total=count,
        size=size,
        first_url=_link(query) if window.has_previous else None,
        previous_url=_link(
            query,
            before=encode_cursor(tag, keys, first_row, backwards=True),
            page=previous_number,
        )
        if window.has_previous and first_row is not None
        else None,
        next_url=_link(query, after=encode_cursor(tag, keys, last_row), page=next_number)
        if window.has_next and last_row is not None
        else None,
        last_url=_link(query, last=1, page=pages) if window.has_next else None,
    )


# --- The API's lists ----------------------------------------------------------------------------

API_PAGE_SIZE = 50
API_MAX_PAGE_SIZE = 200


def api_page(
    request: Request,
    queryset: Source,
    keys: Sequence[Key],
    render: Callable[[list[Any]], Any],
    *,
    tag: str,
) -> Response:
    """One page in the envelope every list answers with, `{count, next, previous, results}`,
    found by its `cursor` (the `next` / `previous` links carry it). `count` stops at
    COUNT_CAP + 1. A bare `page=N` still works within the counted part of the list. A cursor
    this list did not hand out answers 400 `validation_error`."""
    size = _int(request.query_params.get("page_size")) or API_PAGE_SIZE
    size = min(size, API_MAX_PAGE_SIZE)
    cursor = request.query_params.get("cursor")
    number = _int(request.query_params.get("page"))
    if cursor:
        try:
            values, backwards = decode_cursor(tag, keys, cursor)
        except InvalidCursor as exc:
            raise ValidationError(
                {"cursor": ["Not a cursor of this list: follow the next and previous links."]}
            ) from exc
        window = seek(queryset, keys, size=size, values=values, backwards=backwards)
    elif number and number > 1 and (number - 1) * size < COUNT_CAP:
        rows = _read(queryset, keys, size=size, start=(number - 1) * size)
        window = Window(_prefetched(queryset, rows[:size]), True, has_next=len(rows) > size)
    else:
        window = seek(queryset, keys, size=size)
    url = request.build_absolute_uri()
    url = remove_query_param(url, "page")
    rows = window.rows
    next_url = previous_url = None
    if window.has_next and rows:
        next_url = replace_query_param(url, "cursor", encode_cursor(tag, keys, rows[-1]))
    if window.has_previous and rows:
        previous_url = replace_query_param(
            url, "cursor", encode_cursor(tag, keys, rows[0], backwards=True)
        )
    return Response(
        {
            "count": capped_count(queryset),
            "next": next_url,
            "previous": previous_url,
            "results": render(rows),
        }
    )
