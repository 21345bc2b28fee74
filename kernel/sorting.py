"""Sortable portal lists: the `?sort=` choice read against a whitelist, and the links of
sortable column headers that keep every other choice (search, filters) but start again at
page 1.

    sorting = Sorting(request, {"name": False, "servers": True}, default="name")
    rows = rows.order_by(*ORDERINGS[sorting.value])
    {# template #}
    <th aria-sort="{{ sorting.columns.name.aria }}">
      <a href="{{ sorting.columns.name.url }}">Customer{{ sorting.columns.name.arrow }}</a></th>
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.http import HttpRequest, QueryDict

from .keyset import NAV_PARAMS


@dataclass(frozen=True)
class Column:
    """One sortable column header: where clicking it leads and how it is sorted now."""

    url: str
    aria: str  # "ascending" | "descending" | "none" (the aria-sort attribute)

    @property
    def arrow(self) -> str:
        return {"ascending": " ▲", "descending": " ▼"}.get(self.aria, "")


class Sorting:
    """The sort chosen by `?sort=`, one of `columns` ("name" ascending, "-name" descending).

    `columns` maps each sortable column to whether its first click sorts descending (counts
    read best largest first). Anything else in the query string falls back to `default`.
    """

    def __init__(
        self,
        request: HttpRequest,
        columns: Mapping[str, bool],
        default: str,
        param: str = "sort",
    ) -> None:
        allowed = {*columns, *(f"-{column}" for column in columns)}
        raw = request.GET.get(param, "")
        self.value = raw if raw in allowed else default
        self.column = self.value.removeprefix("-")
        self.descending = self.value.startswith("-")
        self.param = param
        self.columns = {
            column: self._column(request.GET, column, first_descending)
            for column, first_descending in columns.items()
        }

    def _column(self, query: QueryDict, column: str, first_descending: bool) -> Column:
        if column == self.column:
            aria = "descending" if self.descending else "ascending"
            descending = not self.descending  # clicking again reverses
        else:
            aria = "none"
            descending = first_descending
        params = query.copy()
        for name in NAV_PARAMS:  # a new sort starts again at page 1
            params.pop(name, None)
        params[self.param] = f"-{column}" if descending else column
        return Column(url=f"?{params.urlencode()}", aria=aria)
