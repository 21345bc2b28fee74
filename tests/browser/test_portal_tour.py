"""A tour of the portal in a real browser (Debian's chromium driven by Playwright) against a
live server with the demo data: the reseller picks its customer, adds a server, assigns
capacity and sees the activation token; the customer then sees its license rows. Screenshots
of each step go to $TEST_ARTIFACTS (default: test-artifacts/ at the repository root)."""

import io
import os
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from smartaccounts.secrets import hash_secret
from tokens.models import ActivationToken, Assignment, Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo1234"  # licensing_portal/management/commands/demo_data.py

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
)
expect = sync_api.expect


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def demo_data(transactional_db) -> None:
    call_command("demo_data", stdout=io.StringIO())


@pytest.fixture
def chromium(monkeypatch, demo_data, live_server):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the
    # test makes meanwhile are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int, height: int):
    """A page in a fresh context (no cookies) that records uncaught script errors."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(15_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def log_out(page) -> None:
    page.locator("header details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()


def test_reseller_assigns_capacity_and_customer_sees_its_licenses(chromium, live_server, artifacts):
    page = new_page(chromium, 1280, 900)
    base = live_server.url
    started = time.monotonic()

    # The reseller lands on its customer picker.
    log_in(page, base, "reseller@example.com")
    expect(page).to_have_url(f"{base}/customers/")
    expect(page.get_by_role("link", name="Demo Customer")).to_be_visible()
    page.screenshot(path=artifacts / "01-reseller-customer-picker.png", full_page=True)

    # Pick the customer: its licenses, one row per application.
    page.get_by_role("link", name="Demo Customer").click()
    expect(page).to_have_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))
    expect(page.locator(".context-bar")).to_contain_text("Demo Customer")
    recording = page.locator("tbody.pool-row", has_text="Call Recording").locator("tr").first
    expect(recording).to_be_visible()
    total, assigned, available, locked = map(int, recording.locator("td.num").all_inner_texts())
    assert total - assigned == available >= 5
    page.screenshot(path=artifacts / "02-reseller-customer-licenses.png", full_page=True)

    # Servers tab, add a server.
    page.locator("nav.tabs").get_by_role("link", name="Servers").click()
    expect(page).to_have_url(re.compile(r"/accounts/[0-9a-f-]{36}/servers/$"))
    page.get_by_text("Add a server").click()
    page.get_by_label("Name").fill("PBX-Tour")
    page.get_by_label("Purpose").select_option("test")
    page.get_by_role("button", name="Create server").click()
    expect(page).to_have_url(re.compile(r"/servers/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("PBX-Tour")
    page.screenshot(path=artifacts / "03-reseller-new-server.png", full_page=True)

    # Assign 5 channels of Call Recording: the token box appears, once.
    quantity = page.locator("#qty-CALL_RECORDING")
    quantity.fill("5")
    page.locator("form.assign-form", has=quantity).get_by_role("button", name="Save").click()
    token_box = page.locator("#activation-token")
    expect(token_box).to_be_visible()
    token = token_box.input_value()
    assert token.startswith("act_"), token
    expect(page.locator(".token-box")).to_contain_text("HTTPS (port 443)")
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("5")
    page.screenshot(path=artifacts / "04-reseller-activation-token.png", full_page=True)

    log_out(page)
    expect(page).to_have_url(f"{base}/login/")

    # The customer lands on its own account and sees its license rows.
    log_in(page, base, "customer@example.com")
    expect(page).to_have_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))
    recording = page.locator("tbody.pool-row", has_text="Call Recording").locator("tr").first
    expect(recording).to_be_visible()
    # The same pool, 5 more channels of it now held by PBX-Tour.
    expect(recording.locator("td.num")).to_have_text(
        [str(total), str(assigned + 5), str(available - 5), str(locked)]
    )
    expect(page.locator("tbody.pool-row", has_text="Attendant Console")).to_be_visible()
    page.screenshot(path=artifacts / "05-customer-licenses.png", full_page=True)

    assert page.errors == []
    print(f"browser tour took {time.monotonic() - started:.1f}s")  # noqa: T201

    # What the browser did is in the database.
    server = Server.objects.get(name="PBX-Tour")
    assert server.account.name == "Demo Customer"
    assert (server.purpose, server.state) == ("test", Server.State.PENDING)
    assert sum(Assignment.objects.filter(server=server).values_list("quantity", flat=True)) == 5
    assert ActivationToken.objects.get(server=server).token_hash == hash_secret(token)


def test_the_licenses_page_fits_a_phone(chromium, live_server, artifacts):
    page = new_page(chromium, 390, 844)

    log_in(page, live_server.url, "customer@example.com")
    expect(page).to_have_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))
    expect(page.locator("tbody.pool-row", has_text="Call Recording")).to_be_visible()
    page.screenshot(path=artifacts / "06-customer-licenses-phone.png", full_page=True)

    # The table may scroll inside its wrapper; the page itself must not scroll sideways.
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert page.errors == []
    assert scroll_width <= inner_width + 1, (scroll_width, inner_width)
