"""Everyday portal journeys as their people take them, in Chromium against gunicorn with
production settings and the demo data: the reseller sorts and filters its customers, licenses
and orders and downloads the licenses CSV; the customer reads care and term dates in its rows
(by keyboard too) and sees who its partner is; a phone (390 px) shows the licenses and the
unlock page without sideways scrolling, quantity, available and care in view; vendor staff
lowering a quantity below what servers hold get a form error in the back office."""

import csv
import io
import json
import re
import urllib.request

from .conftest import links_in, log_in

RESELLER = "reseller@example.com"
CUSTOMER = "customer@example.com"
VENDOR = "vendor@example.com"
PHONE = {"width": 390, "height": 844}
DAY = re.compile(r"\d{4}-\d\d-\d\d")


def account_id(site, name: str = "Demo Customer") -> str:
    return site.shell(
        "from smartaccounts.models import SmartAccount; "
        f"print(SmartAccount.objects.get(name={name!r}).pk)"
    )


def place_order(site, reference: str, customer: dict, lines: list[dict]) -> dict:
    """An order from Demo Reseller's ordering system, through the API with a fresh key."""
    key = site.manage("create_api_key", "--org", "Demo Reseller").stdout.strip().splitlines()[-1]
    request = urllib.request.Request(
        f"{site.url}/api/v1/orders",
        data=json.dumps({"reference": reference, "customer": customer, "lines": lines}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        return json.load(answer)


ACME = {"name": "Acme S.p.A.", "email": "it@acme.example", "external_id": "ACME-1"}
ACME_LINES = [
    {
        "product": "CALL_RECORDING",
        "quantity": 50,
        "kind": "perpetual",
        "care_ends_at": "2030-01-31T00:00:00Z",
    },
    {
        "product": "ATTENDANT_CONSOLE",
        "quantity": 8,
        "kind": "subscription",
        "ends_at": "2029-06-30T00:00:00Z",
        "care_ends_at": "2029-06-30T00:00:00Z",
    },
]


def listed(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def application_names(page) -> list[str]:
    return listed(page, "tbody.pool-row td.app summary strong")


def no_sideways_scroll(page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, (scroll_width, inner_width)


def in_view(page, locator) -> None:
    """The element is shown, whole, inside the viewport (after scrolling it into view)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None, locator
    assert box["width"] > 0 and box["height"] > 0, (locator, box)
    # Within a pixel: scrolling into view may stop on a fraction of one.
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1, (locator, box)
    assert box["y"] >= -1 and box["y"] + box["height"] <= viewport["height"] + 1, (locator, box)


# --- The reseller's everyday tools ----------------------------------------------------------


def test_the_reseller_sorts_and_filters_customers_and_licenses_and_downloads_the_csv(
    site, new_page, artifacts
):
    place_order(site, "PO-ACME-1", ACME, ACME_LINES)
    page = new_page()
    log_in(page, site.url, RESELLER)
    page.wait_for_url(f"{site.url}/customers/")

    # Customers: by name, then reversed by clicking the header again.
    assert listed(page, "table.picker tbody td:first-child strong") == [
        "Acme S.p.A.",
        "Demo Customer",
    ]
    page.locator("table.picker thead").get_by_role("link", name=re.compile(r"^Customer")).click()
    page.wait_for_url(re.compile(r"sort=-name"))
    assert listed(page, "table.picker tbody td:first-child strong") == [
        "Demo Customer",
        "Acme S.p.A.",
    ]
    # Most servers first: Demo Customer has two, Acme none yet.
    page.locator("table.picker thead").get_by_role("link", name=re.compile(r"^Servers")).click()
    page.wait_for_url(re.compile(r"sort=-servers"))
    assert listed(page, "table.picker tbody td:first-child strong")[0] == "Demo Customer"
    # The live search keeps the sort.
    page.get_by_label("Search customers by name").fill("acme")
    page.wait_for_url(re.compile(r"q=acme"))
    assert "sort=-servers" in page.url
    page.locator("table.picker tbody td:first-child strong").first.wait_for()
    assert listed(page, "table.picker tbody td:first-child strong") == ["Acme S.p.A."]
    page.screenshot(path=artifacts / "journeys-01-reseller-customers-sorted.png", full_page=True)

    # Licenses of Demo Customer: filter by care status, sort by available.
    page.goto(f"{site.url}/accounts/{account_id(site)}/")
    every = application_names(page)
    assert every == sorted(every, key=str.casefold)
    page.locator("nav.filters-inline").get_by_role("link", name="Expiring").click()
    page.wait_for_url(re.compile(r"care=expiring"))
    assert application_names(page) == ["Contact Manager"]
    page.locator("nav.filters-inline").get_by_role("link", name="All").click()
    page.wait_for_url(re.compile(r"/accounts/[0-9a-f-]{36}/(\?)?$"))
    page.locator("table.pool thead").get_by_role("link", name=re.compile(r"^Available")).click()
    page.wait_for_url(re.compile(r"sort=-available"))
    available = [int(text) for text in listed(page, 'tbody.pool-row td[data-label="Available"]')]
    assert available == sorted(available, reverse=True) and len(available) == len(every)
    page.screenshot(path=artifacts / "journeys-02-reseller-licenses-sorted.png", full_page=True)

    # The CSV: one flat row per license, opened as text.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "licenses-demo-customer.csv"
    text = download.path().read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "application",
        "code",
        "kind",
        "quantity",
        "state",
        "starts_at",
        "term_ends_at",
        "care_ends_at",
        "care_status",
        "order_reference",
    ]
    count = site.shell(
        "from smartaccounts.models import License; "
        "print(License.objects.filter(account__name='Demo Customer').count())"
    )
    assert len(rows) == int(count)
    recording = [r for r in rows if r["code"] == "CALL_RECORDING" and r["kind"] == "perpetual"]
    assert recording[0]["order_reference"] == "DEMO-1001"
    assert recording[0]["quantity"] == "50"
    assert {r["order_reference"] for r in rows} >= {"DEMO-1001", "DEMO-1002"}
    assert "PO-ACME-1" not in text  # another customer's licenses
    assert page.errors == []


def test_the_reseller_sorts_its_orders_from_the_filter_bar(site, new_page, artifacts):
    place_order(site, "PO-ACME-1", ACME, ACME_LINES)
    page = new_page()
    log_in(page, site.url, RESELLER)
    page.get_by_role("link", name="Orders").first.click()
    page.wait_for_url(f"{site.url}/orders/")
    # Newest first by default.
    references = listed(page, "table tbody td:first-child > a")
    assert references[0] == "PO-ACME-1"

    page.get_by_label("Sort").select_option(label="Reference A–Z")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"sort=reference"))
    references = listed(page, "table tbody td:first-child > a")
    assert references == sorted(references) and "PO-ACME-1" in references

    page.get_by_label("Sort").select_option(label="Customer A–Z")
    page.get_by_label("State").select_option("locked")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"sort=customer"))
    assert page.get_by_label("Sort").input_value() == "customer"
    customers = listed(page, "table tbody td:nth-child(2)")
    assert customers == sorted(customers) and customers[0] == "Acme S.p.A."
    page.screenshot(path=artifacts / "journeys-03-reseller-orders-sorted.png", full_page=True)
    assert page.errors == []


# --- The customer ----------------------------------------------------------------------------


def test_the_customer_reads_dates_in_its_rows_and_sees_its_partner(site, new_page, artifacts):
    page = new_page()
    log_in(page, site.url, CUSTOMER)
    page.wait_for_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))

    partner = page.locator("p.partner")
    assert partner.inner_text().startswith("Your partner: Demo Reseller, reseller@example.com")
    assert partner.get_by_role("link").get_attribute("href") == "mailto:reseller@example.com"

    # The nearest care end is text in the row, not a tooltip.
    contact = page.locator("tbody.pool-row", has_text="Contact Manager").locator("tr").first
    care = contact.locator('td[data-label="Care"]')
    assert re.fullmatch(r"expiring\s+until \d{4}-\d\d-\d\d", care.inner_text().strip())
    console = page.locator("tbody.pool-row", has_text="Attendant Console").locator("tr").first
    assert DAY.fullmatch(console.locator('td[data-label="Term ends"]').inner_text().strip())

    # By keyboard: the application's summary takes focus and opens its licenses.
    summary = page.locator("tbody.pool-row", has_text="Call Recording").locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    nested = page.locator("#licenses-CALL_RECORDING table.nested")
    nested.wait_for()
    perpetual = nested.locator("tbody tr", has_text="DEMO-1001")
    assert DAY.fullmatch(perpetual.locator('td[data-label="Start"]').inner_text().strip())
    assert DAY.fullmatch(perpetual.locator('td[data-label="Care end"]').inner_text().strip())
    locked = nested.locator("tbody tr", has_text="DEMO-1002")
    assert DAY.fullmatch(locked.locator('td[data-label="Term end"]').inner_text().strip())
    page.screenshot(path=artifacts / "journeys-04-customer-dates-and-partner.png", full_page=True)
    # No time on the page shows seconds or microseconds.
    assert not re.search(r"\d\d:\d\d:\d\d", page.locator("main").inner_text())
    assert page.errors == []


# --- Phones ----------------------------------------------------------------------------------


def test_the_licenses_page_on_a_phone_keeps_quantity_available_and_care_in_view(
    site, new_page, artifacts
):
    page = new_page(**PHONE)
    log_in(page, site.url, CUSTOMER)
    page.wait_for_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))
    page.screenshot(path=artifacts / "journeys-05-phone-licenses.png", full_page=True)

    no_sideways_scroll(page)
    rows = page.locator("tbody.pool-row > tr:first-child")
    assert rows.count() >= 4
    for n in range(rows.count()):
        row = rows.nth(n)
        for label in ("Total", "Available", "Care"):
            in_view(page, row.locator(f'td[data-label="{label}"]'))
    # The labels say what each number is.
    first = rows.first.locator('td[data-label="Available"]')
    label = first.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Available"'
    # Sorting is still at hand.
    in_view(
        page, page.locator("table.pool thead").get_by_role("link", name=re.compile(r"^Available"))
    )

    # The licenses behind a row stack too.
    page.locator("tbody.pool-row", has_text="Call Recording").locator("summary").click()
    nested = page.locator("#licenses-CALL_RECORDING table.nested tbody tr").first
    nested.wait_for()
    for label in ("Quantity", "Care end", "Term end"):
        in_view(page, nested.locator(f'td[data-label="{label}"]'))
    no_sideways_scroll(page)
    page.screenshot(path=artifacts / "journeys-06-phone-licenses-expanded.png", full_page=True)
    assert page.errors == []


def test_the_unlock_page_on_a_phone_keeps_the_lines_in_view(site, new_page, artifacts):
    place_order(site, "PO-PHONE-1", ACME, ACME_LINES)
    mail = site.wait_for_mail(lambda m: "PO-PHONE-1" in str(m["Subject"]))
    unlock_url = next(link for link in links_in(mail) if "/unlock/" in link)

    page = new_page(**PHONE)  # as a phone's mail app opens it: no session
    page.goto(unlock_url)
    page.screenshot(path=artifacts / "journeys-07-phone-unlock-confirm.png", full_page=True)
    no_sideways_scroll(page)
    lines = page.locator(".lines-stack tbody tr")
    assert lines.count() == 2
    for n in range(2):
        line = lines.nth(n)
        in_view(page, line.locator("td").nth(2))  # quantity
        in_view(page, line.locator("td").nth(5))  # care end
        assert (
            line.locator("td").nth(2).evaluate("cell => getComputedStyle(cell, '::before').content")
            == '"Quantity"'
        )
    assert "50 channels" in lines.first.inner_text()
    assert "2030-01-31" in lines.first.inner_text()
    in_view(page, page.get_by_role("button", name="Confirm unlock"))

    page.get_by_role("button", name="Confirm unlock").click()
    page.wait_for_load_state()
    assert "unlocked" in page.locator("h1").inner_text()
    page.screenshot(path=artifacts / "journeys-08-phone-unlock-done.png", full_page=True)
    no_sideways_scroll(page)
    in_view(page, page.locator(".lines-stack tbody tr").first.locator("td").nth(2))
    assert page.errors == []


# --- The back office -------------------------------------------------------------------------


def test_vendor_staff_lowering_a_quantity_below_what_servers_hold_get_a_form_error(
    site, new_page, artifacts
):
    license_id, assigned = site.shell(
        "from smartaccounts.models import License; "
        "lic = License.objects.get(account__name='Demo Customer', source='DEMO-1001', "
        "product__code='CALL_RECORDING'); print(lic.pk, lic.assigned)"
    ).split()
    assert int(assigned) == 20

    page = new_page()
    log_in(page, site.url, VENDOR)
    page.goto(f"{site.url}/admin/smartaccounts/license/{license_id}/change/")
    page.locator("#id_quantity").fill("5")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state()

    assert page.url.endswith(f"/admin/smartaccounts/license/{license_id}/change/")
    error = page.locator(".field-quantity .errorlist")
    assert "20 channels of this license are assigned to servers" in error.inner_text()
    assert "PBX-Milan-prod: 20" in error.inner_text()
    page.screenshot(path=artifacts / "journeys-09-admin-quantity-error.png", full_page=True)
    quantity = site.shell(
        f"from smartaccounts.models import License; "
        f"print(License.objects.get(pk='{license_id}').quantity)"
    )
    assert quantity == "50"

    # Down to exactly what is held is fine.
    page.locator("#id_quantity").fill("20")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/smartaccounts/license/$"))
    quantity = site.shell(
        f"from smartaccounts.models import License; "
        f"print(License.objects.get(pk='{license_id}').quantity)"
    )
    assert quantity == "20"
    assert page.errors == []
