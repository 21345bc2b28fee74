"""Walking a portal list page by page the way a person does, through its First / Previous /
Next / Last links, for the seek-paginated lists' tests."""

import html
import re
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

Rows = Callable[[Any], list[Any]]


def link(page: str, label: str) -> str | None:
    """The href of the pagination link `label` ("next", "prev", "First", "Last"), unescaped."""
    if label in ("next", "prev"):
        found = re.search(rf'<a href="([^"]*)" rel="{label}">', page)
    else:
        text = {"First": "« First", "Last": "Last »"}[label]
        found = re.search(rf'<a href="([^"]*)">{text}</a>', page)
    return html.unescape(found.group(1)) if found else None


def walk(client: Client, path: str, rows: Rows, start: str, step: str) -> list[Any]:
    """Rows of every page from `start` (a query string) following `step` links to the end; a
    backward walk ("prev") returns them in list order."""
    pages: list[list[Any]] = []
    query: str | None = start
    seen = 0
    while query is not None:
        response = client.get(path + query)
        assert response.status_code == 200, response.content
        pages.append(rows(response))
        query = link(response.content.decode(), step)
        seen += 1
        assert seen < 100, "the links go round in circles"
    if step == "prev":
        pages.reverse()
    return [row for page in pages for row in page]


def forwards_and_backwards(client: Client, path: str, rows: Rows, query: str = "?") -> list[Any]:
    """Every row going forwards from page 1, checked against every row going backwards from
    the last page (reached through page 1's Last link): the same rows, once each, in order."""
    forwards = walk(client, path, rows, query, "next")
    first = client.get(path + query).content.decode()
    last = link(first, "Last")
    backwards = walk(client, path, rows, last, "prev") if last else forwards
    assert backwards == forwards
    assert len(set(map(repr, forwards))) == len(forwards), "a row shows twice"
    return forwards


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)
