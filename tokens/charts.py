"""A server's recorded use of one application over the last days, worked out from its UsageDay
rows and drawn here as a small SVG bar chart (no script, no external asset, no style
attribute: presentation attributes only, which the portal's CSP allows).

A server records its use only when it changes materially or every few hours, so a steady
server leaves days without a row: its last recorded use goes on. Each day's value is that
day's peak if the day has a row, else the latest earlier row's (carried forward); days before
the server's first recorded use are empty, and so are days after it was deactivated.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# The days a chart shows, today (UTC) included. UsageDay rows are kept a day longer
# (USAGE_HISTORY_DAYS), so the row carried into the window's first day is usually still there.
WINDOW_DAYS = 30

# The drawing, in viewBox units; the <svg> is as wide as its box and at most this high, so it
# fits a 390 px phone (it shrinks) and stays small on a desktop.
WIDTH = 320
HEIGHT = 120
LEFT = 30  # room for the axis labels
RIGHT = 4
TOP = 8
BOTTOM = 18
BAR_COLOR = "#1a4fa0"
OVER_COLOR = "#b3261e"


def window(today: date, days: int = WINDOW_DAYS) -> list[date]:
    """The `days` days ending with `today`, oldest first."""
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def _count(value: object) -> int | None:
    # bool is an int to Python, not a count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def daily_use(
    code: str,
    rows: Sequence[tuple[date, Mapping[str, Any]]],
    days: Sequence[date],
    *,
    reported: Mapping[str, Any] | None = None,
    first_use: date | None = None,
    until: date | None = None,
) -> list[int | None]:
    """The use of `code` on each of `days` (None: nothing recorded then).

    `rows` are the server's (day, peaks) rows, oldest first: those of the window and the last
    one before it. With no row at all, the server's last reported use (`reported`) stands for
    every day from `first_use` (its first sync) on. Days after `until` (deactivated) are empty.
    """
    ordered = sorted(rows, key=lambda row: row[0])
    values: list[int | None] = []
    i = 0
    latest: Mapping[str, Any] | None = None
    for day in days:
        while i < len(ordered) and ordered[i][0] <= day:
            latest = ordered[i][1]
            i += 1
        if until is not None and day > until:
            values.append(None)
        elif latest is not None:
            values.append(_count(latest.get(code)))
        elif not ordered and reported and (first_use is None or day >= first_use):
            values.append(_count(reported.get(code)))
        else:
            values.append(None)
    return values


@dataclass(frozen=True)
class UsageSeries:
    """One application's use on a server, day by day, beside what the server holds of it."""

    code: str
    name: str
    unit: str
    held: int
    days: tuple[date, ...]
    values: tuple[int | None, ...]

    @property
    def peak(self) -> tuple[int, date] | None:
        """The highest use and the first day it was reached; None: nothing recorded."""
        best: tuple[int, date] | None = None
        for day, value in zip(self.days, self.values, strict=True):
            if value is not None and (best is None or value > best[0]):
                best = (value, day)
        return best

    @property
    def over_days(self) -> int:
        return sum(1 for value in self.values if value is not None and value > self.held)

    @property
    def rows(self) -> list[tuple[date, int | None, bool]]:
        """(day, use, over what it holds) for the text alternative's table."""
        return [
            (day, value, value is not None and value > self.held)
            for day, value in zip(self.days, self.values, strict=True)
        ]

    @property
    def summary(self) -> str:
        """The chart in words: "peak 23 channels on 2026-12-01; holds 20; over on 3 of 30 days"."""
        peak = self.peak
        if peak is None:
            return f"no use recorded; holds {self.held}"
        words = f"peak {peak[0]} {self.unit} on {peak[1].isoformat()}; holds {self.held}"
        if self.over_days:
            words += f"; more in use than it holds on {self.over_days} of {len(self.days)} days"
        return words


def usage_chart_svg(series: UsageSeries, *, chart_id: str) -> SafeString:
    """The series as an SVG bar chart: one bar per day (red above what the server holds), a
    dashed line at what it holds, its <title> and <desc> as its accessible name and
    description. Every text is escaped; `chart_id` prefixes the ids inside."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    top = max([series.held, *(v for v in series.values if v is not None)], default=0) or 1
    slot = plot_w / max(len(series.days), 1)
    gap = min(2.0, slot / 4)

    def y(value: int) -> float:
        return base - plot_h * value / top

    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>',
        (
            (
                _n(LEFT + n * slot + gap / 2),
                _n(y(value)),
                _n(slot - gap),
                _n(base - y(value)),
                OVER_COLOR if value > series.held else BAR_COLOR,
            )
            for n, value in enumerate(series.values)
            if value
        ),
    )
    held_line = format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="1.5"'
        ' stroke-dasharray="5 3"></line>',
        LEFT,
        WIDTH - RIGHT,
        _n(y(series.held)),
        _n(y(series.held)),
        OVER_COLOR,
    )
    first, last = (series.days[0], series.days[-1]) if series.days else (None, None)
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%"'
        ' height="{h}" preserveAspectRatio="xMinYMin meet" role="img" class="usage-chart"'
        ' aria-labelledby="{id}-title {id}-desc" font-size="11" fill="currentColor">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
        '<line x1="{left}" x2="{right}" y1="{base}" y2="{base}" stroke="currentColor"'
        ' stroke-opacity="0.5"></line>'
        "{bars}{held_line}"
        '<text x="{label_x}" y="{top_y}" text-anchor="end">{top}</text>'
        '<text x="{label_x}" y="{base}" text-anchor="end">0</text>'
        '<text x="{left}" y="{h}" dy="-3">{first}</text>'
        '<text x="{right}" y="{h}" dy="-3" text-anchor="end">{last}</text>'
        "</svg>",
        w=WIDTH,
        h=HEIGHT,
        id=chart_id,
        title=f"{series.name}: {series.unit} in use per day, last {len(series.days)} days",
        desc=series.summary,
        left=LEFT,
        right=WIDTH - RIGHT,
        base=_n(base),
        bars=bars,
        held_line=held_line,
        label_x=LEFT - 4,
        top_y=_n(TOP + 8),
        top=top,
        first=first.isoformat() if first else "",
        last=last.isoformat() if last else "",
    )


def _n(value: float) -> str:
    """A coordinate, short: 12.5, 12."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
