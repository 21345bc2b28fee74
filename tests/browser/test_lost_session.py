"""A page kept open while its session ends or changes in another tab, in Chromium against
gunicorn with production settings (see conftest.py). Pressing *Save* then says what happened
(the session ended, or changed) and offers to log in again, back to the same page; it never
says the role was refused. Both for htmx forms (the server page's capacity) and for plain
forms (the orders page's Re-send), at a desktop and a phone width.

Logging out keeps the CSRF token (the request passes the check and meets ``login_required``);
logging in again rotates it (the request fails the check): both are covered.
"""

from __future__ import annotations

import re

import pytest

from .conftest import log_in, log_out

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

RESELLER = "reseller@example.com"
DISTRIBUTOR = "distributor@example.com"
CUSTOMER = "customer@example.com"
WIDTHS = [(1280, 900), (390, 844)]


def server_id(site, name: str) -> str:
    return site.shell(
        f"from tokens.models import Server; print(Server.objects.get(name='{name}').pk)"
    )


def press_save(page, code: str, quantity: int) -> None:
    field = page.locator(f"#qty-{code}")
    field.fill(str(quantity))
    page.locator("form.assign-form", has=field).get_by_role("button", name="Save").click()


def in_another_tab(page, base_url: str, then_log_in_as: str | None = None) -> None:
    """Log out in a second tab of the same browser, and perhaps log in there again."""
    other = page.context.new_page()
    other.goto(page.url)
    log_out(other)
    if then_log_in_as:
        log_in(other, base_url, then_log_in_as)
        expect(other.locator("header details.dropdown summary")).to_contain_text(then_log_in_as)
    other.close()


def held(site, server: str) -> str:
    return site.shell(
        "from tokens.models import Assignment; "
        f"print(sorted((str(a.license_id), a.quantity) for a in Assignment.objects.filter("
        f"server__name='{server}')))"
    )


@pytest.mark.parametrize("width,height", WIDTHS)
def test_save_after_logging_out_in_another_tab_says_the_session_ended(
    site, new_page, artifacts, width, height
):
    page = new_page(width, height)
    log_in(page, site.url, RESELLER)
    server_path = f"/servers/{server_id(site, 'PBX-Milan-prod')}/"
    page.goto(site.url + server_path)
    before = held(site, "PBX-Milan-prod")

    in_another_tab(page, site.url)
    press_save(page, "CALL_RECORDING", 25)

    note = page.locator(".htmx-failure")
    expect(note).to_contain_text("Your session ended")
    expect(note).to_contain_text("Nothing was changed")
    expect(note).not_to_contain_text("Refused")
    expect(note).not_to_contain_text("role")
    page.screenshot(path=artifacts / f"session-ended-htmx-{width}.png", full_page=True)
    assert held(site, "PBX-Milan-prod") == before
    # Nothing of the login page was swapped into the server's body.
    expect(page.locator("#server-body input[name=password]")).to_have_count(0)

    # The link logs in again and comes back to the same page, where Save works.
    page.locator(".htmx-failure").get_by_role("link", name="Log in again").click()
    expect(page).to_have_url(re.compile(r"/login/\?next=" + re.escape(server_path)))
    page.get_by_label("E-mail").fill(RESELLER)
    page.get_by_label("Password").fill("demo1234")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(site.url + server_path)
    press_save(page, "CALL_RECORDING", 25)
    expect(page.locator(".messages")).to_contain_text("now holds 25 channels of Call Recording")
    assert page.errors == []


def test_save_after_logging_in_again_in_another_tab_says_the_session_changed(
    site, new_page, artifacts
):
    page = new_page()
    log_in(page, site.url, RESELLER)
    server_path = f"/servers/{server_id(site, 'PBX-Milan-prod')}/"
    page.goto(site.url + server_path)
    before = held(site, "PBX-Milan-prod")

    # Someone else now: the page was made for the reseller.
    in_another_tab(page, site.url, then_log_in_as=DISTRIBUTOR)
    press_save(page, "CALL_RECORDING", 25)
    note = page.locator(".htmx-failure")
    expect(note).to_contain_text("Your session changed")
    expect(note).not_to_contain_text("Refused")
    link = note.get_by_role("link", name="Log in again")
    expect(link).to_have_attribute("href", re.compile(r"next=" + re.escape(server_path)))
    page.screenshot(path=artifacts / "session-changed-htmx.png", full_page=True)

    # The same person again: the page's CSRF token is no longer the session's.
    in_another_tab(page, site.url, then_log_in_as=RESELLER)
    press_save(page, "CALL_RECORDING", 26)
    expect(note).to_contain_text("Your session changed")
    expect(note).not_to_contain_text("Refused")
    assert held(site, "PBX-Milan-prod") == before


@pytest.mark.parametrize("width,height", WIDTHS)
def test_a_page_form_after_the_session_ended_or_changed_offers_to_log_in_again(
    site, new_page, artifacts, width, height
):
    page = new_page(width, height)
    log_in(page, site.url, RESELLER)
    page.goto(f"{site.url}/orders/")
    resend = page.get_by_role("button", name=re.compile("^Re-send e-mail")).first
    expect(resend).to_be_visible()
    sent_before = len(site.mails())

    # Logged out elsewhere: the login page says why and comes back to the orders page.
    in_another_tab(page, site.url)
    resend.click()
    expect(page).to_have_url(re.compile(r"/login/\?next=/orders/$"))
    expect(page.locator(".messages")).to_contain_text("Your session ended")
    page.screenshot(path=artifacts / f"session-ended-form-{width}.png", full_page=True)
    page.get_by_label("E-mail").fill(RESELLER)
    page.get_by_label("Password").fill("demo1234")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.url}/orders/")

    # Logged in as someone else elsewhere: the answer says the session changed.
    resend = page.get_by_role("button", name=re.compile("^Re-send e-mail")).first
    in_another_tab(page, site.url, then_log_in_as=CUSTOMER)
    resend.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your session changed")
    expect(page.locator("main")).not_to_contain_text("role")
    link = page.locator("main a", has_text="Log in again")
    expect(link).to_have_attribute("href", re.compile(r"next=/orders/$"))
    page.screenshot(path=artifacts / f"session-changed-form-{width}.png", full_page=True)
    assert len(site.mails()) == sent_before
    assert page.errors == []
