"""Every portal page, for every role of the demo data, at a desktop (1280 x 900) and a phone
(390 x 844) width, in Chromium against gunicorn with production settings (see conftest.py):

- the page never scrolls sideways (the document is no wider than the window);
- every action (button, link styled as a button, link in a table or a toolbar) lies inside
  the window, so it can be reached without scrolling sideways;
- every table column is inside the window (no column cut off at the right);
- axe-core (tests/browser/vendor/axe.min.js, injected by the test only, never served by the
  site) finds no serious or critical WCAG 2.1 A/AA violation.

The pages are found the way a person finds them: from the home page, following the portal's
own links (one page per kind of address: ids collapsed), never the back office, the API docs,
downloads or logging out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import log_in

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = (1280, 900)
PHONE = (390, 844)
ROLES = [
    "distributor@example.com",
    "reseller@example.com",
    "customer@example.com",
    "vendor@example.com",
]
SKIP = re.compile(
    r"^/(admin|api|logout|login|password-reset|static|unlock|invitation)(/|$)|\.csv$|/deactivate/$"
)
MAX_PAGES_PER_ROLE = 40

# What lies outside the window, measured in the page: the document's width, every visible
# action whose box ends right of the window (or starts left of it), every header cell cut off.
MEASURE = """() => {
  const width = window.innerWidth;
  const out = [];
  // Visually hidden (clipped to 1 px) for screen readers only: not on screen, not a fault.
  const clipped = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.position === "absolute" && style.clip !== "auto") return true;
    }
    return false;
  };
  const describe = (el) => {
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim();
    return `${el.tagName.toLowerCase()} "${text.slice(0, 40)}"`;
  };
  // The account menu is measured open: what it holds must fit too.
  const menu = document.querySelector("header details.dropdown");
  if (menu) menu.open = true;
  const actions = document.querySelectorAll(
    "main button, main [role=button], main input[type=submit], main a, main select, " +
    "main input:not([type=hidden]), header a, header summary, header button, main th"
  );
  for (const el of actions) {
    if (clipped(el) || getComputedStyle(el).visibility === "hidden") continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // not rendered (a closed <details>)
    if (box.right > width + 0.5 || box.left < -0.5) {
      out.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  // A part of the page that scrolls (or clips) sideways hides a column at this width.
  for (const el of document.querySelectorAll("main *")) {
    const style = getComputedStyle(el);
    if (clipped(el)) continue;
    const clips = ["auto", "scroll", "hidden"].includes(style.overflowX);
    if (clips && el.scrollWidth > el.clientWidth + 1) {
      const name = `${el.tagName.toLowerCase()}.${el.className}`;
      out.push(`${name} (${el.scrollWidth} px of content in ${el.clientWidth} px)`);
    }
  }
  if (menu) menu.open = false;
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    outside: out,
  };
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => {
      const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ");
      return `${v.id} (${v.impact}): ${where}`;
    });
}"""


def _pattern(path: str) -> str:
    """One page per kind of address: the ids in it collapsed."""
    parts = []
    for part in path.strip("/").split("/"):
        parts.append("*" if re.search(r"\d", part) and part not in {"api-keys"} else part)
    return "/" + "/".join(parts)


def _portal_links(page, base: str) -> Iterator[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.href)")
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or SKIP.search(parts.path):
            continue
        yield parts.path


def _check(page, label: str, axe_source: str) -> list[str]:
    problems = []
    measured = page.evaluate(MEASURE)
    if measured["scrollWidth"] > measured["innerWidth"]:
        problems.append(
            f"{label}: the page is {measured['scrollWidth']} px wide in a"
            f" {measured['innerWidth']} px window"
        )
    problems.extend(f"{label}: {item} is outside the window" for item in measured["outside"])
    if page.evaluate("() => typeof window.axe") == "undefined":
        # Evaluated (not a <script> element), so the site's CSP is not asked to allow it.
        page.evaluate(axe_source)
    problems.extend(f"{label}: axe {item}" for item in page.evaluate(AXE_RUN))
    return problems


def test_every_portal_page_fits_both_widths_and_passes_axe(site, new_page, artifacts):
    axe_source = AXE.read_text()
    # The widest a server's row gets: over use and a possible clone in its state, a long host
    # name and version (at 1280 px the list used to cut off its "Holds" column).
    site.shell(
        "from django.utils import timezone; from tokens.models import Server; "
        "Server.objects.filter(name='PBX-Milan-prod').update("
        "reported_usage={'CALL_RECORDING': 35, 'ATTENDANT_CONSOLE': 3}, overused=True, "
        "clone_suspected_at=timezone.now(), "
        "hostname='pbx-milan-prod.customer-datacenter.example.com', "
        "reported_version='AppSuite 12.4.1-build.20261201')"
    )
    problems: list[str] = []
    visited: dict[str, list[str]] = {}
    for email_address in ROLES:
        page = new_page(*DESKTOP)
        log_in(page, site.url, email_address)
        expect(page.locator("header details.dropdown summary")).to_contain_text(email_address)
        queue = ["/"] + list(_portal_links(page, site.url))
        seen: set[str] = set()
        pages: list[str] = []
        while queue and len(pages) < MAX_PAGES_PER_ROLE:
            path = queue.pop(0)
            if _pattern(path) in seen:
                continue
            seen.add(_pattern(path))
            page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
            answer = page.goto(site.url + path)
            if answer is None or answer.status != 200:
                continue
            pages.append(path)
            queue.extend(_portal_links(page, site.url))
            for width, height in (DESKTOP, PHONE):
                page.set_viewport_size({"width": width, "height": height})
                label = f"{email_address} {path} at {width}px"
                problems.extend(_check(page, label, axe_source))
            slug = re.sub(r"[^a-z0-9]+", "-", f"{email_address.split('@')[0]}{path}").strip("-")
            page.screenshot(path=artifacts / f"every-page-{slug}-390.png", full_page=True)
        visited[email_address] = pages
        assert page.errors == [], page.errors
        page.context.close()

    # The crawl reached the pages this test is about.
    assert {"/orders/", "/team/", "/api-keys/", "/customers/"} <= set(
        visited["reseller@example.com"]
    ), visited
    assert any(p.startswith("/servers/") for p in visited["reseller@example.com"]), visited
    assert any(
        re.fullmatch(r"/accounts/[^/]+/servers/", p) for p in visited["reseller@example.com"]
    )
    assert problems == [], "\n".join(problems)


# What the chevron, the cards and the error lists look like, measured in the page.
LAYOUT = """() => {
  const found = {};
  // A row's summary: its chevron (::after) on the label's line, so the summary is no taller
  // than what it holds.
  const summary = document.querySelector("table.pool details summary");
  if (summary) {
    const inner = Array.from(summary.children).map((c) => c.getBoundingClientRect());
    const top = Math.min(...inner.map((r) => r.top));
    const bottom = Math.max(...inner.map((r) => r.bottom));
    const box = summary.getBoundingClientRect();
    const pad = parseFloat(getComputedStyle(summary).paddingTop) +
      parseFloat(getComputedStyle(summary).paddingBottom);
    found.summaryExtra = Math.round(box.height - pad - (bottom - top));
  }
  // The cards and the heading after them.
  const cards = document.querySelector(".cards");
  if (cards && cards.nextElementSibling) {
    found.cardsGap = Math.round(
      cards.nextElementSibling.getBoundingClientRect().top - cards.getBoundingClientRect().bottom
    );
  }
  // Error lists: no bullet, nothing left of the form's column.
  const error = document.querySelector(".errorlist li");
  if (error) {
    const form = error.closest("form").getBoundingClientRect();
    found.errorBullet = getComputedStyle(error).listStyleType;
    found.errorOutside = Math.round(form.left - error.getBoundingClientRect().left);
  }
  return found;
}"""


@pytest.mark.parametrize("width,height", [DESKTOP, PHONE])
def test_chevrons_cards_and_error_lists_sit_in_their_column(site, new_page, width, height):
    page = new_page(width, height)
    account = site.shell(
        "from smartaccounts.models import SmartAccount; "
        "print(SmartAccount.objects.get(name='Demo Customer').pk)"
    )
    # An error list: the login form sent empty.
    page.goto(f"{site.url}/login/")
    page.get_by_role("button", name="Log in").click()
    found = page.evaluate(LAYOUT)
    assert found["errorBullet"] == "none" and found["errorOutside"] <= 0, found

    log_in(page, site.url, "reseller@example.com")
    page.goto(f"{site.url}/accounts/{account}/")
    found = page.evaluate(LAYOUT)
    assert found["summaryExtra"] <= 8, found  # the chevron did not wrap onto a line of its own

    page.goto(f"{site.url}/accounts/{account}/overview/")
    found = page.evaluate(LAYOUT)
    assert found["cardsGap"] >= 16, found  # the heading after the cards does not touch them
