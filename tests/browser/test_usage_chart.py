"""The server page's chart of the last 30 days of reported use, in Chromium against gunicorn
with production settings and the demo data (see conftest.py): one chart per application
PBX-Milan-prod holds, drawn inline (an SVG from the page itself, no request for it), its
over-use days above the dashed line of what it holds, said in words beside it; at 1280 and at
390 px wide, with nothing scrolling sideways, no CSP report and, where the suite vendors
axe-core, no serious or critical violation on the page.

Demo data: PBX-Milan-prod holds 20 channels of Call Recording and 4 seats of Attendant
Console. Its past syncs are written here as the sync leaves them (a UsageDay row on each day
its use changed, its last report on the server), since a sync cannot be dated back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .test_server_journeys import reseller_page, server_id, shot

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ` +
      v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""

HISTORY = """
from datetime import timedelta
from django.utils import timezone
from tokens.models import Server, UsageDay
milan = Server.objects.get(name="PBX-Milan-prod")
today = timezone.now().date()
for ago, peaks in (
    (40, {"CALL_RECORDING": 12}),
    (10, {"CALL_RECORDING": 18, "ATTENDANT_CONSOLE": 2}),
    (4, {"CALL_RECORDING": 23, "ATTENDANT_CONSOLE": 3}),
):
    UsageDay.objects.create(server=milan, day=today - timedelta(days=ago), peaks=peaks)
Server.objects.filter(pk=milan.pk).update(
    first_sync_at=timezone.now() - timedelta(days=45),
    reported_usage={"CALL_RECORDING": 23, "ATTENDANT_CONSOLE": 3},
)
"""


def test_the_server_page_charts_its_last_30_days_of_use(site, new_page, artifacts):
    site.shell(HISTORY)
    page = reseller_page(site, new_page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{site.url}/servers/{server_id(site, 'PBX-Milan-prod')}/")

    section = page.locator("#usage")
    expect(section.get_by_role("heading", level=2)).to_have_text("Use, last 30 days")
    recording = section.locator("article[data-product=CALL_RECORDING]")
    console = section.locator("article[data-product=ATTENDANT_CONSOLE]")
    peak_day = (datetime.now(UTC).date() - timedelta(days=4)).isoformat()
    expect(recording).to_contain_text(
        f"Peak 23 channels on {peak_day}; holds 20; more in use than it holds on 5 of 30 days."
    )
    expect(console).to_contain_text("Peak 3 seats on")
    expect(console).to_contain_text("holds 4.")
    # The chart is an image with a name, for a screen reader; its days are a table too.
    chart = recording.get_by_role("img", name=re.compile("Call Recording: channels in use per day"))
    expect(chart).to_be_visible()
    expect(recording.locator("svg rect[fill='#b3261e']")).to_have_count(5)  # the days over
    expect(recording.locator("svg rect")).to_have_count(30)  # carried from 40 days ago
    expect(recording.locator("table tr", has_text=f"{peak_day}")).to_contain_text(
        "23 (more than it holds)"
    )
    # Drawn in the page: nothing was fetched for it.
    assert not [url for url in requests if "chart" in url or "usage" in url], requests

    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        box = chart.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, box)
        assert 60 <= box["height"] <= 120, (width, box)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, (width, scroll_width)
        section.scroll_into_view_if_needed()
        shot(page, artifacts / f"server-usage-chart-{width}.png")
        if AXE.exists():
            if page.evaluate("() => typeof window.axe") == "undefined":
                page.evaluate(AXE.read_text())  # evaluated: the site's CSP is not asked
            assert page.evaluate(AXE_RUN) == []

    assert page.errors == [] and page.console_errors == [], page.console_errors
