"""What partners read on their lists and orders (issue 20): the distributor's customer list
names each customer's reseller and filters by it, at 1280 px and 390 px; the reseller reading
the order its distributor holds is told whom to ask and how; an admin withdraws an invitation
from the Team page."""

import pytest

from .conftest import log_in

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def no_horizontal_scroll(page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width + 1, (scroll_width, inner_width)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_distributor_sees_and_filters_its_customers_by_reseller(
    site, new_page, artifacts, width
):
    site.shell(
        "from smartaccounts.models import Organization as O; "
        "second = O.objects.get(name='Second Reseller'); "
        "O.objects.get(name='Demo Distributor').resellers.add(second)"
    )
    page = new_page(width=width, height=900)
    log_in(page, site.url, "distributor@example.com")

    page.goto(f"{site.url}/customers/")
    expect(page.get_by_role("columnheader", name="Reseller")).to_be_visible()
    expect(page.locator("tr", has_text="Demo Customer")).to_contain_text("Demo Reseller")
    expect(page.locator("tr", has_text="Second Customer")).to_contain_text("Second Reseller")
    no_horizontal_scroll(page)

    page.get_by_label("Reseller").select_option(label="Second Reseller")
    expect(page.locator("tr", has_text="Demo Customer")).to_have_count(0)
    expect(page.locator("tr", has_text="Second Customer")).to_be_visible()
    assert "reseller=" in page.url  # the filtered list has an address of its own
    page.screenshot(path=artifacts / f"customers-by-reseller-{width}.png", full_page=True)
    no_horizontal_scroll(page)
    assert page.errors == []


@pytest.mark.parametrize("width", [1280, 390])
def test_the_reseller_is_told_whom_to_ask_for_a_held_order(site, new_page, artifacts, width):
    page = new_page(width=width, height=900)
    log_in(page, site.url, "reseller@example.com")

    page.goto(f"{site.url}/orders/")
    page.locator("tr", has_text="DIST-2001").get_by_role("link", name="DIST-2001").click()

    holder = page.locator("#order-holder")
    expect(holder).to_contain_text("only Demo Distributor can unlock it")
    expect(holder).to_contain_text("contact Demo Distributor at distributor@example.com")
    link = holder.get_by_role("link", name="distributor@example.com")
    assert link.get_attribute("href").startswith("mailto:distributor@example.com")
    expect(page.get_by_text("re-send the e-mail for a new one")).to_have_count(0)
    page.screenshot(path=artifacts / f"orders-held-contact-{width}.png", full_page=True)
    no_horizontal_scroll(page)
    assert page.errors == []


def test_an_admin_withdraws_an_invitation(site, new_page, artifacts):
    page = new_page(width=390, height=900)
    log_in(page, site.url, "reseller@example.com")
    page.goto(f"{site.url}/team/")
    page.get_by_text("Invite someone").click()
    page.get_by_label("E-mail").fill("customer@example.com")  # an address in use elsewhere
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to customer@example.com")).to_be_visible()
    invitations = page.locator("#invitations")
    expect(invitations).to_contain_text("it cannot join yours")

    page.on("dialog", lambda dialog: dialog.accept())
    invitations.get_by_role(
        "button", name="Withdraw the invitation of customer@example.com"
    ).click()

    expect(page.get_by_text("The invitation of customer@example.com is withdrawn")).to_be_visible()
    expect(page.locator("#invitations")).to_have_count(0)
    page.screenshot(path=artifacts / "team-invitation-withdrawn.png", full_page=True)
    no_horizontal_scroll(page)
    assert page.errors == []


@pytest.mark.parametrize("width", [1280, 390])
def test_a_partner_prints_the_delivery_sheet_of_an_order(site, new_page, artifacts, width):
    page = new_page(width=width, height=900)
    log_in(page, site.url, "distributor@example.com")
    page.goto(f"{site.url}/orders/")
    page.locator("tr", has_text="DIST-2001").get_by_role("link", name="DIST-2001").click()

    page.get_by_role("link", name="Delivery sheet (printable)").click()

    expect(page.locator("h1")).to_have_text("Delivery sheet — order DIST-2001")
    expect(page.locator("#sheet-state")).to_contain_text("Locked")
    expect(page.locator("main")).to_contain_text("Demo Customer")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=artifacts / f"delivery-sheet-{width}.png", full_page=True)
    page.emulate_media(media="print")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.locator("h1")).to_be_visible()
    if width == 1280:
        page.pdf(path=artifacts / "delivery-sheet.pdf")
    assert page.errors == []


def test_the_customer_asks_its_partner_to_renew_and_the_partner_sees_it(site, new_page, artifacts):
    customer = new_page(width=390, height=900)
    log_in(customer, site.url, "customer@example.com")
    row = customer.locator("tbody.pool-row", has_text="Contact Manager")  # care ends in 40 days
    row.locator("summary").click()
    ask = row.get_by_role("button", name="Ask my partner to renew")
    expect(ask).to_be_visible()
    no_horizontal_scroll(customer)

    ask.click()

    expect(
        customer.get_by_text("Demo Reseller has been asked to renew Contact Manager")
    ).to_be_visible()
    customer.screenshot(path=artifacts / "renewal-asked-390.png", full_page=True)
    assert customer.errors == []
    told = site.wait_for_mail(
        lambda m: (
            "reseller@example.com" in str(m["To"]) and "asks you to renew" in str(m["Subject"])
        )
    )
    assert "Contact Manager" in str(told["Subject"])

    partner = new_page()
    log_in(partner, site.url, "reseller@example.com")
    partner.goto(f"{site.url}/renewals/")
    line = partner.locator("tr", has_text="Contact Manager")
    expect(line).to_contain_text("customer asked to renew")
    partner.screenshot(path=artifacts / "renewals-customer-asked.png", full_page=True)
    assert partner.errors == []
