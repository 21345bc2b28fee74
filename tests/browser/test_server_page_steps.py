"""Issue 20 on the server pages, in Chromium against gunicorn with production settings and the
demo data (see conftest.py and test_server_journeys.py):

(a) a new server gives one next step at each state: assign capacity first (no token offered,
    and the offline section asks for capacity, not for a token), then the token with the
    agent's command and a QR code drawn here; once deactivated, the page and the agent both
    say the server was deactivated, when, and that its token no longer works;
(b) two servers in use on the same machine are flagged as possible clones on both pages
    (linking to each other), on the account's Overview and in the reseller's daily digest;
(c) the same pages at 390 px wide: nothing scrolls sideways.
"""

from __future__ import annotations

import re

import pytest

from .conftest import mail_text
from .test_server_journeys import (
    account_id,
    assign,
    create_server,
    http_json,
    reseller_page,
    server_id,
    shot,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def no_sideways_scroll(page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, (scroll_width, inner_width)


# --- (a) one next step at each state ---------------------------------------------------------


def test_a_new_server_gives_one_next_step_at_each_state(site, new_page, artifacts):
    page = reseller_page(site, new_page)
    create_server(page, site, "PBX-Steps")
    expect(page).to_have_url(re.compile(r"/servers/[0-9a-f-]{36}/$"))
    server_url = page.url

    # Holding nothing: assign capacity first; no token is offered, and the offline section
    # does not ask for a token that does not exist yet.
    step = page.locator("#next-step")
    expect(step).to_contain_text("Next: assign capacity")
    expect(step).to_contain_text("holds nothing yet, so it has no activation token")
    expect(page.get_by_role("button", name=re.compile("token", re.I))).to_have_count(0)
    expect(page.locator("#offline")).to_contain_text("First assign it perpetual capacity above")
    expect(page.locator("#offline input[type=file]")).to_have_count(0)
    shot(page, artifacts / "server-steps-01-assign-first.png")

    # Capacity: the token, once, with the agent's command for it and its QR code.
    assign(page, "CONTACT_MANAGER", 5)
    token = page.locator("#activation-token").input_value()
    assert token.startswith("act_")
    command = page.locator("#agent-command").input_value()
    assert command == f"appsuite-agent --insecure-dev activate {token} --url {site.url}"
    qr = page.locator("#token-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] >= 100 and box["height"] >= 100
    expect(page.locator("#offline input[type=file]")).to_have_count(1)
    shot(page, artifacts / "server-steps-02-token-command-qr.png")
    assert page.errors == [] and page.console_errors == [], page.console_errors

    # The next visit: waiting for activation (the secret is not shown again).
    page.goto(server_url)
    expect(page.locator("#next-step")).to_contain_text("Waiting for activation")
    expect(page.locator("#agent-command")).to_have_count(0)

    # Deactivated before the token was used: the page says when, and the agent is told why
    # the token no longer works.
    page.get_by_text("Rename or deactivate").click()
    page.get_by_role("button", name="Deactivate this server…").click()
    page.get_by_role("button", name="Deactivate", exact=True).click()
    page.goto(server_url)
    step = page.locator("#next-step")
    expect(step).to_contain_text(re.compile(r"Deactivated \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(step).to_contain_text("its activation token and server credential stopped working")
    shot(page, artifacts / "server-steps-03-deactivated.png")

    refused = site.agent("activate", token, "--url", site.url, check=False)
    assert refused.returncode != 0
    assert re.search(
        r"This server was deactivated in the portal on \d{4}-\d\d-\d\d \d\d:\d\d UTC, so its "
        r"activation token no longer works",
        refused.stderr,
    ), refused.stderr
    assert "replaced by a newer one" not in refused.stderr
    assert page.errors == [] and page.console_errors == [], page.console_errors


# --- (b) possible clones ---------------------------------------------------------------------


def test_two_servers_on_one_machine_are_flagged_everywhere(site, new_page, artifacts):
    page = reseller_page(site, new_page)
    rome_url = f"{site.url}/servers/{server_id(site, 'PBX-Rome-test')}/"
    page.goto(rome_url)
    assign(page, "CALL_RECORDING", 5)
    token = page.locator("#activation-token").input_value()
    # PBX-Rome-test is activated on the machine PBX-Milan-prod already runs on (a copied VM).
    http_json(
        f"{site.url}/api/v1/activation",
        {
            "token": token,
            "fingerprint": "demo-milan-fingerprint",
            "hostname": "rome.local",
            "version": "W26",
        },
    )

    page.goto(rome_url)
    flag = page.locator("#same-machine")
    expect(flag).to_contain_text("Possible clone.")
    expect(flag).to_contain_text("PBX-Milan-prod is also in use on the same machine")
    shot(page, artifacts / "server-clones-01-copy.png")
    flag.get_by_role("link", name="PBX-Milan-prod").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("PBX-Milan-prod")
    expect(page.locator("#same-machine")).to_contain_text("PBX-Rome-test is also in use")
    page.locator("#same-machine").get_by_role("link", name="PBX-Rome-test").click()
    expect(page).to_have_url(rome_url)

    page.goto(f"{site.url}/accounts/{account_id(site)}/overview/")
    clones = page.locator("#possible-clones")
    expect(clones).to_contain_text("in use on the same machine")
    expect(clones.get_by_role("link", name="PBX-Rome-test")).to_have_count(1)
    expect(clones.get_by_role("link", name="PBX-Milan-prod")).to_have_count(1)
    shot(page, artifacts / "server-clones-02-overview.png")

    site.manage("run_daily_jobs")
    digest = site.wait_for_mail(lambda m: "Possible clones" in mail_text(m))
    assert "reseller@example.com" in str(digest["To"])
    text = mail_text(digest)
    assert re.search(
        r"- Demo Customer: PBX-Rome-test, activated .* on the machine PBX-Milan-prod runs on: "
        + re.escape(rome_url),
        text,
    ), text
    assert page.errors == [] and page.console_errors == [], page.console_errors


# --- (c) on a phone --------------------------------------------------------------------------


def test_the_server_page_with_its_token_fits_a_phone(site, new_page, artifacts):
    page = reseller_page(site, new_page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{site.url}/servers/{server_id(site, 'PBX-Rome-test')}/")
    expect(page.locator("#next-step")).to_contain_text("Next: assign capacity")
    no_sideways_scroll(page)
    assign(page, "CALL_RECORDING", 2)
    expect(page.locator("#token-qr svg")).to_be_visible()
    expect(page.locator("#agent-command")).to_be_visible()
    no_sideways_scroll(page)
    shot(page, artifacts / "server-steps-phone-token.png")
    assert page.errors == [] and page.console_errors == [], page.console_errors
