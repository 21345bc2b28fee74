"""The server page's usage chart as a pure function (tokens/charts.py): a day's value is its
peak, carried forward over days without a row; empty before the first recorded use and after
deactivation; a line at what the server holds, bars above it marked; every text escaped."""

import re
from datetime import date, timedelta

from tokens.charts import (
    BAR_COLOR,
    OVER_COLOR,
    UsageSeries,
    daily_use,
    usage_chart_svg,
    window,
)

TODAY = date(2026, 12, 6)
DAYS = window(TODAY)


def day(n: int) -> date:
    """The n-th day of the window (0: the first, 29: today)."""
    return DAYS[n]


def test_the_window_is_thirty_days_ending_today():
    assert len(DAYS) == 30
    assert DAYS[0] == TODAY - timedelta(days=29) and DAYS[-1] == TODAY
    assert sorted(DAYS) == DAYS


def test_a_day_without_a_row_carries_the_last_recorded_use_forward():
    rows = [(day(3), {"REC": 5}), (day(10), {"REC": 9}), (day(11), {"REC": 7})]

    values = daily_use("REC", rows, DAYS)

    assert values[3:10] == [5] * 7
    assert values[10] == 9 and values[11:] == [7] * 19


def test_the_row_before_the_window_carries_into_its_first_days():
    rows = [(day(0) - timedelta(days=12), {"REC": 4}), (day(20), {"REC": 6})]

    values = daily_use("REC", rows, DAYS)

    assert values[:20] == [4] * 20 and values[20:] == [6] * 10


def test_days_before_the_first_recorded_use_are_empty():
    values = daily_use("REC", [(day(5), {"REC": 2})], DAYS)

    assert values[:5] == [None] * 5 and values[5:] == [2] * 25


def test_with_no_row_the_last_reported_use_stands_from_the_first_sync_on():
    values = daily_use("REC", [], DAYS, reported={"REC": 3}, first_use=day(26))
    assert values == [None] * 26 + [3] * 4

    # Steady since before the window: every day.
    assert daily_use("REC", [], DAYS, reported={"REC": 3}) == [3] * 30
    # Nothing reported, or another application only: empty.
    assert daily_use("REC", [], DAYS) == [None] * 30
    assert daily_use("REC", [], DAYS, reported={"OTHER": 1}) == [None] * 30


def test_a_day_whose_report_lacks_the_application_is_empty_and_odd_values_are_ignored():
    rows = [(day(1), {"REC": 5}), (day(2), {"OTHER": 1}), (day(3), {"REC": "x"})]

    assert daily_use("REC", rows, DAYS)[:5] == [None, 5, None, None, None]
    assert daily_use("REC", [(day(1), {"REC": True})], DAYS)[1] is None


def test_days_after_deactivation_are_empty():
    values = daily_use("REC", [(day(0), {"REC": 5})], DAYS, until=day(9))

    assert values[:10] == [5] * 10 and values[10:] == [None] * 20


def series(values: list[int | None], held: int = 20, name: str = "Call Recording") -> UsageSeries:
    return UsageSeries(
        code="REC", name=name, unit="channels", held=held, days=tuple(DAYS), values=tuple(values)
    )


def test_the_summary_names_the_peak_its_day_what_is_held_and_the_days_over():
    s = series([None] * 10 + [12] * 10 + [23, 23, 15] + [18] * 7)

    assert s.peak == (23, day(20))  # the first day of the highest use
    assert s.over_days == 2
    assert s.summary == (
        "peak 23 channels on 2026-11-27; holds 20; more in use than it holds on 2 of 30 days"
    )
    assert series([5] * 30).summary == "peak 5 channels on 2026-11-07; holds 20"
    assert series([None] * 30).summary == "no use recorded; holds 20"
    assert s.rows[20] == (day(20), 23, True) and s.rows[0] == (day(0), None, False)


def bars(svg: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', rect)) for rect in re.findall(r"<rect [^>]*>", svg)]


def test_the_chart_draws_a_bar_a_day_with_use_and_marks_those_above_the_held_line():
    svg = usage_chart_svg(series([None] * 10 + [10] * 18 + [25, 0]), chart_id="usage-0")

    drawn = bars(svg)
    assert len(drawn) == 19  # no bar for a day without use, nor for 0
    assert [b["fill"] for b in drawn] == [BAR_COLOR] * 18 + [OVER_COLOR]
    # Drawn left to right, the over-use bar the tallest; the held line sits between.
    xs = [float(b["x"]) for b in drawn]
    assert xs == sorted(xs)
    tops = [float(b["y"]) for b in drawn]
    held_y = float(re.search(r'<line [^>]*y1="([\d.]+)"[^>]*stroke-dasharray', svg).group(1))
    assert tops[-1] < held_y < tops[0]


def test_the_chart_is_labelled_fits_any_width_and_uses_no_style_attribute():
    svg = usage_chart_svg(series([None] * 29 + [23]), chart_id="usage-3")

    assert svg.startswith("<svg ")
    assert 'viewBox="0 0 320 120"' in svg and 'width="100%"' in svg
    assert 'role="img"' in svg and 'aria-labelledby="usage-3-title usage-3-desc"' in svg
    assert '<title id="usage-3-title">Call Recording: channels in use per day, last 30 days' in svg
    assert '<desc id="usage-3-desc">peak 23 channels on 2026-12-06; holds 20;' in svg
    assert ">2026-11-07</text>" in svg and ">2026-12-06</text>" in svg
    assert "style=" not in svg and "<script" not in svg


def test_every_text_in_the_chart_is_escaped():
    svg = usage_chart_svg(series([1] * 30, name='<script>"x"</script>'), chart_id="usage-0")

    assert "<script" not in svg
    assert "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in svg
