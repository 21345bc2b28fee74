"""Orders and invitations walked the way their people walk them, in Chromium against gunicorn
with production settings and the demo data:

- the reseller unlocks its own order from the Orders page through the confirm step, and the
  customer's e-mail arrives and its link opens the customer's licenses;
- the reseller sees the order its distributor placed for it, read only: no unlock, no re-send;
- the distributor unlocks the order it placed;
- a person invited to the reseller's team opens the invitation e-mail in a fresh browser, sets
  a password and lands in the portal.

E-mailed links are opened in fresh browser contexts, as from a mail client."""

import re

import pytest

from .conftest import links_in, log_in, mail_text

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def order_state(site, reference: str) -> str:
    return site.shell(
        f"from orders.models import Order; print(Order.objects.get(reference='{reference}').state)"
    )


def order_id(site, reference: str) -> str:
    return site.shell(
        f"from orders.models import Order; print(Order.objects.get(reference='{reference}').pk)"
    )


def mail_to(address: str, subject_part: str):
    return lambda m: address in str(m["To"]) and subject_part in str(m["Subject"])


def test_reseller_unlocks_from_the_orders_page_and_the_customer_is_told(site, new_page, artifacts):
    page = new_page()
    log_in(page, site.url, "reseller@example.com")
    page.goto(f"{site.url}/orders/")
    page.screenshot(path=artifacts / "orders-01-reseller-list.png", full_page=True)

    page.get_by_role("button", name="Unlock order DEMO-1002").click()
    expect(page.locator("h1")).to_have_text("Unlock order DEMO-1002?")
    expect(page.get_by_role("button", name="Confirm unlock")).to_be_visible()
    page.screenshot(path=artifacts / "orders-02-reseller-confirm.png", full_page=True)
    assert order_state(site, "DEMO-1002") == "locked"  # showing the page changed nothing

    page.get_by_role("button", name="Confirm unlock").click()
    expect(page.get_by_text("Order DEMO-1002 unlocked: its licenses are active")).to_be_visible()
    assert re.search(r"/orders/[0-9a-f-]{36}/$", page.url), page.url
    expect(page.locator("h1")).to_contain_text("Unlocked")
    page.screenshot(path=artifacts / "orders-03-reseller-unlocked.png", full_page=True)
    assert order_state(site, "DEMO-1002") == "unlocked"
    assert page.errors == []

    # The customer's admin is told, once, with a link to the licenses.
    told = site.wait_for_mail(mail_to("customer@example.com", "New licenses are available"))
    text = mail_text(told)
    assert "Call Recording" in text and "ordered through Demo Reseller" in text
    account_link = next(link for link in links_in(told) if "/accounts/" in link)
    assert account_link.startswith(site.url)

    customer = new_page()
    customer.goto(account_link)
    expect(customer.locator("h1")).to_have_text("Log in")
    customer.get_by_label("E-mail").fill("customer@example.com")
    customer.get_by_label("Password").fill("demo1234")
    customer.get_by_role("button", name="Log in").click()
    customer.wait_for_url(account_link)
    expect(customer.get_by_text("Call Recording").first).to_be_visible()
    customer.screenshot(path=artifacts / "orders-04-customer-from-email.png", full_page=True)
    assert customer.errors == []

    # Back on the confirm page, the order is already unlocked, and nobody was told twice.
    page.goto(f"{page.url}unlock/")
    expect(page.locator("h1")).to_have_text("Order DEMO-1002 is already unlocked")
    mails = [m for m in site.mails() if "New licenses are available" in str(m["Subject"])]
    assert len(mails) == 1


def test_reseller_sees_the_distributors_order_read_only(site, new_page, artifacts):
    held = order_id(site, "DIST-2001")
    page = new_page()
    log_in(page, site.url, "reseller@example.com")

    page.goto(f"{site.url}/orders/")
    row = page.locator("tr", has_text="DIST-2001")
    expect(row).to_contain_text("held by Demo Distributor")
    expect(row.get_by_role("button")).to_have_count(0)
    expect(row.get_by_role("link", name=re.compile("Unlock"))).to_have_count(0)
    page.screenshot(path=artifacts / "orders-05-reseller-sees-held-order.png", full_page=True)

    row.get_by_role("link", name="DIST-2001").click()
    expect(page.locator("h1")).to_contain_text("Order DIST-2001")
    expect(page.get_by_text("only Demo Distributor can unlock it")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Unlock|Re-send"))).to_have_count(0)
    expect(page.get_by_text("Queue Manager")).to_be_visible()
    page.screenshot(path=artifacts / "orders-06-reseller-held-detail.png", full_page=True)

    # Typing the confirm page's address is a 404, and a forged POST changes nothing.
    answer = page.goto(f"{site.url}/orders/{held}/unlock/")
    assert answer.status == 404
    token = page.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    forged = page.request.post(
        f"{site.url}/orders/{held}/unlock/",
        form={"csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{site.url}/orders/", "Origin": site.url},
    )
    assert forged.status == 404
    assert order_state(site, "DIST-2001") == "locked"
    assert page.errors == []


def test_distributor_unlocks_its_own_order(site, new_page, artifacts):
    page = new_page()
    log_in(page, site.url, "distributor@example.com")
    page.goto(f"{site.url}/orders/")
    page.locator("tr", has_text="DIST-2001").get_by_role("link", name="DIST-2001").click()

    page.get_by_role("button", name="Unlock the licenses…").click()
    expect(page.locator("h1")).to_have_text("Unlock order DIST-2001?")
    page.screenshot(path=artifacts / "orders-07-distributor-confirm.png", full_page=True)
    page.get_by_role("button", name="Confirm unlock").click()

    expect(page.get_by_text("Order DIST-2001 unlocked: its licenses are active")).to_be_visible()
    page.screenshot(path=artifacts / "orders-08-distributor-unlocked.png", full_page=True)
    assert order_state(site, "DIST-2001") == "unlocked"
    told = site.wait_for_mail(mail_to("customer@example.com", "New licenses are available"))
    assert "Queue Manager" in mail_text(told)
    assert page.errors == []


def test_an_invited_team_member_sets_a_password_and_lands_in_the_portal(site, new_page, artifacts):
    admin = new_page()
    log_in(admin, site.url, "reseller@example.com")
    admin.goto(f"{site.url}/team/")
    admin.get_by_text("Invite someone").click()
    admin.get_by_label("E-mail").fill("new.colleague@reseller.example")
    admin.get_by_label("Name").fill("New Colleague")
    admin.get_by_label("Role").select_option("member")
    admin.get_by_role("button", name="Send invitation").click()
    expect(admin.get_by_text("Invitation sent to new.colleague@reseller.example")).to_be_visible()
    admin.screenshot(path=artifacts / "invite-01-team.png", full_page=True)

    invitation = site.wait_for_mail(mail_to("new.colleague@reseller.example", "invited you"))
    text = mail_text(invitation)
    assert "reseller@example.com of Demo Reseller invited you to join Demo Reseller" in text
    assert "as a member" in text
    assert "now has licenses" not in text
    link = next(link for link in links_in(invitation) if "/invitation/" in link)
    assert link.startswith(site.url)

    invited = new_page()
    invited.goto(link)
    expect(invited.locator("h1")).to_have_text("Welcome to the Cloud Licensing portal")
    invited.screenshot(path=artifacts / "invite-02-choose-password.png", full_page=True)
    invited.get_by_label("New password", exact=True).fill("a-long-new-passphrase-42")
    invited.get_by_label("New password confirmation").fill("a-long-new-passphrase-42")
    invited.get_by_role("button", name="Set my password").click()

    invited.wait_for_url(f"{site.url}/customers/")
    expect(invited.get_by_text("Welcome! Your password is set")).to_be_visible()
    expect(invited.get_by_text("Demo Customer").first).to_be_visible()
    invited.screenshot(path=artifacts / "invite-03-landed.png", full_page=True)
    assert invited.errors == []

    # The link worked once; opened again it says so.
    again = new_page()
    again.goto(link)
    expect(again.locator("h1")).to_have_text("This invitation link no longer works")
