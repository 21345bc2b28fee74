"""The server operator's and the partner's journeys on the server pages, in Chromium against
gunicorn with production settings and the demo data (see conftest.py):

(a) offline activation: the agent writes a request file, the reseller uploads it on the
    server's page, downloads the license file and the agent installs it; after a capacity
    change the page says the file is out of date and the same request file refreshes it;
(b) a capacity change refused from a stale tab shows the reason beside the field, in words,
    and the field shows what the server really holds;
(c) an offline server is offered no subscription capacity, and told why;
(d) a server reporting more in use than it holds gets an over-use badge, and its fix as one
    action;
(e) a duplicate server name is refused with a form error (create and rename);
(f) vendor staff search servers and activations in the back office, read only.

Demo data: Demo Customer has 50 perpetual channels of Call Recording (PBX-Milan-prod holds
20), 200 perpetual users of Contact Manager, 10 subscription seats of Attendant Console
(PBX-Milan-prod holds 4); PBX-Rome-test is pending and holds nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from .conftest import log_in

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

RESELLER = "reseller@example.com"
VENDOR = "vendor@example.com"


# --- Helpers ---------------------------------------------------------------------------------


def agent(site, *args: str) -> subprocess.CompletedProcess:
    """`appsuite-agent` on the AppSuite server, trusting the site's root key (docs/agent.md's
    route: APPSUITE_ROOT_KEY from `manage.py root_public_key`)."""
    return site.agent(*args, check=False)


def shot(page, path: Path) -> None:
    """A full-page screenshot that leaves the page as it was: Playwright's default hides the
    caret by writing style="" on fields, which htmx's settle would then copy onto swapped-in
    fields, and the CSP (style-src 'self') reports that."""
    page.screenshot(path=path, full_page=True, caret="initial")


def account_id(site) -> str:
    return site.shell(
        "from smartaccounts.models import SmartAccount; "
        "print(SmartAccount.objects.get(name='Demo Customer').pk)"
    )


def server_id(site, name: str) -> str:
    return site.shell(
        f"from tokens.models import Server; print(Server.objects.get(name='{name}').pk)"
    )


def reseller_page(site, new_page):
    page = new_page()
    page.console_errors = []
    page.on(
        "console",
        # Refusals answer 4xx on purpose; Chromium logs each one. Anything else (a script
        # error, a CSP violation) is a fault.
        lambda message: (
            page.console_errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    log_in(page, site.url, RESELLER)
    expect(page).to_have_url(f"{site.url}/customers/")
    return page


def assign(page, code: str, quantity: int) -> None:
    """Type a quantity into one application's field on the server page and press its Save
    (an htmx form: the server's body is swapped in place)."""
    field = page.locator(f"#qty-{code}")
    field.fill(str(quantity))
    page.locator("form.assign-form", has=field).get_by_role("button", name="Save").click()


def create_server(page, site, name: str, purpose: str = "test") -> None:
    page.goto(f"{site.url}/accounts/{account_id(site)}/servers/")
    page.get_by_text("Add a server").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Purpose").select_option(purpose)
    page.get_by_role("button", name="Create server").click()


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def trusted_keys_file(site, folder: Path) -> Path:
    """The service's /api/v1/keys saved as a file, as the operator carries it to an offline
    server: every key in it carries the root's endorsement."""
    keys = http_json(f"{site.url}/api/v1/keys")
    assert keys["keys"] and all(key.get("endorsement") for key in keys["keys"]), keys
    path = folder / "keys.json"
    path.write_text(json.dumps(keys))
    return path


def make_offline_server(site, page, tmp_path: Path, artifacts: Path, name: str) -> dict:
    """The offline journey up to an installed license file; returns the files it made."""
    create_server(page, site, name)
    expect(page).to_have_url(re.compile(r"/servers/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    # Perpetual capacity first: the token appears, shown once.
    assign(page, "CONTACT_MANAGER", 5)
    token = page.locator("#activation-token")
    expect(token).to_be_visible()
    raw_token = token.input_value()
    expect(page.locator("#offline")).to_contain_text("Offline activation")
    shot(page, artifacts / "servers-offline-01-token.png")

    # On the AppSuite server: write the request file.
    request_file = tmp_path / "request.json"
    made = agent(site, "offline-request", raw_token, "--out", str(request_file))
    assert made.returncode == 0, made.stderr
    assert json.loads(request_file.read_text())["token"] == raw_token

    # In the portal: upload it, download the license file.
    page.locator("#offline input[type=file]").set_input_files(str(request_file))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Get the license file").click()
    download = download_info.value
    assert re.fullmatch(r"license-[a-z0-9-]+\.json", download.suggested_filename)
    license_file = tmp_path / download.suggested_filename
    download.save_as(str(license_file))
    assert json.loads(license_file.read_text())["license"].count(".") == 2

    # On the AppSuite server: install it with the service's public keys.
    keys = trusted_keys_file(site, tmp_path)
    applied = agent(site, "offline-apply", str(license_file), "--keys", str(keys))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Offline license applied." in applied.stdout
    assert "Contact Manager" in applied.stdout
    return {"request": request_file, "license": license_file, "keys": keys}


# --- (a) offline activation ------------------------------------------------------------------


def test_offline_activation_from_request_file_to_installed_license(
    site, new_page, artifacts, tmp_path
):
    page = reseller_page(site, new_page)
    files = make_offline_server(site, page, tmp_path, artifacts, "PBX-Lab-offline")

    # The server page now says what the last license file holds, and when it was issued.
    page.reload()
    expect(page.locator("h1 .badge")).to_contain_text("Activated offline")
    section = page.locator("#license-file")
    expect(section).to_contain_text(re.compile(r"Last issued \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(section).to_contain_text("Contact Manager: 5 users")
    expect(page.locator("#license-file-outdated")).to_have_count(0)
    shot(page, artifacts / "servers-offline-02-activated.png")

    # A capacity change: the page says the file on the server is out of date, and how to
    # refresh it.
    assign(page, "CONTACT_MANAGER", 8)
    expect(page.locator("#qty-CONTACT_MANAGER")).to_have_value("8")
    outdated = page.locator("#license-file-outdated")
    expect(outdated).to_contain_text("The license file on the server is out of date.")
    expect(outdated).to_contain_text("upload the same request file again")
    shot(page, artifacts / "servers-offline-03-out-of-date.png")

    # The same request file again gives a new license file with 8 users.
    page.locator("#offline input[type=file]").set_input_files(str(files["request"]))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Get the license file").click()
    refreshed = tmp_path / "refreshed.json"
    download_info.value.save_as(str(refreshed))
    applied = agent(site, "offline-apply", str(refreshed), "--keys", str(files["keys"]))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert re.search(r"Contact Manager: 8 users", applied.stdout), applied.stdout
    page.reload()
    expect(page.locator("#license-file")).to_contain_text("Contact Manager: 8 users")
    expect(page.locator("#license-file-outdated")).to_have_count(0)

    # A file that is not a request file is a form error on the page, not a 500.
    junk = tmp_path / "junk.json"
    junk.write_text("this is not json")
    page.locator("#offline input[type=file]").set_input_files(str(junk))
    page.get_by_role("button", name="Get the license file").click()
    expect(page.locator("#id_request_file_errors")).to_contain_text(
        "This is not a request file (it is not JSON)."
    )
    shot(page, artifacts / "servers-offline-04-bad-file.png")
    assert page.errors == [] and page.console_errors == [], page.console_errors


# --- (b) refused from a stale tab ------------------------------------------------------------


def test_a_refused_change_from_a_stale_tab_shows_why_and_the_true_value(site, new_page, artifacts):
    page = reseller_page(site, new_page)
    milan_url = f"{site.url}/servers/{server_id(site, 'PBX-Milan-prod')}/"
    rome_url = f"{site.url}/servers/{server_id(site, 'PBX-Rome-test')}/"
    page.goto(milan_url)
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("20")

    # A second tab of the same session gives PBX-Rome-test the other 30 channels.
    other = page.context.new_page()
    other.goto(rome_url)
    assign(other, "CALL_RECORDING", 30)
    expect(other.locator("#qty-CALL_RECORDING")).to_have_value("30")
    other.close()

    # The first tab still says 30 are available and tries to take 10 more.
    assign(page, "CALL_RECORDING", 30)
    error = page.locator("#err-CALL_RECORDING")
    expect(error).to_be_visible()
    expect(error).to_contain_text(
        "Only 0 more channels of Call Recording are available; this server holds 20."
    )
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("20")
    expect(page.locator("#qty-CALL_RECORDING")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#qty-CALL_RECORDING")).to_be_focused()
    shot(page, artifacts / "servers-stale-tab-refused.png")

    # Nothing changed, and a change that fits still works from the same tab.
    assign(page, "CALL_RECORDING", 15)
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("15")
    expect(page.locator("#err-CALL_RECORDING")).to_have_count(0)
    expect(page.locator(".messages")).to_contain_text("now holds 15 channels of Call Recording")
    assert page.errors == [] and page.console_errors == [], page.console_errors

    # Any other failure says so beside the form too, and the next answer that works clears it.
    page.route("**/assign/CALL_RECORDING/", lambda route: route.fulfill(status=502, body="down"))
    assign(page, "CALL_RECORDING", 16)
    failure = page.locator(".htmx-failure")
    expect(failure).to_contain_text("The change did not go through (error 502)")
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("16")  # not saved, and said so
    page.unroute("**/assign/CALL_RECORDING/")
    assign(page, "CALL_RECORDING", 16)
    expect(page.locator(".messages")).to_contain_text("now holds 16 channels of Call Recording")
    expect(page.locator(".htmx-failure")).to_have_count(0)


# --- (c) subscription capacity on an offline server ------------------------------------------


def test_an_offline_server_is_offered_no_subscription_capacity(site, new_page, artifacts, tmp_path):
    page = reseller_page(site, new_page)
    make_offline_server(site, page, tmp_path, artifacts, "PBX-Vault")
    page.reload()

    # Attendant Console is sold here as a subscription only: not offered, and the page says why
    # instead of offering a field whose every value would be refused.
    expect(page.locator("#qty-ATTENDANT_CONSOLE")).to_have_count(0)
    expect(page.locator("#subscription-only-ATTENDANT_CONSOLE")).to_have_text(
        "Subscription only: subscriptions need online activation."
    )
    expect(page.locator("#offline-capacity")).to_contain_text(
        "Subscriptions need online activation."
    )
    # Perpetual capacity stays editable.
    expect(page.locator("#qty-CONTACT_MANAGER")).to_have_value("5")
    assign(page, "CONTACT_MANAGER", 6)
    expect(page.locator("#qty-CONTACT_MANAGER")).to_have_value("6")
    shot(page, artifacts / "servers-offline-subscription-not-offered.png")
    assert page.errors == []


# --- (d) over-use ----------------------------------------------------------------------------


def test_a_server_using_more_than_it_holds_is_flagged(site, new_page, artifacts):
    page = reseller_page(site, new_page)
    rome = server_id(site, "PBX-Rome-test")
    page.goto(f"{site.url}/servers/{rome}/")
    assign(page, "CALL_RECORDING", 10)
    token = page.locator("#activation-token").input_value()

    # The AppSuite server activates and syncs over the activation API (the agent's calls).
    activation = http_json(
        f"{site.url}/api/v1/activation",
        {"token": token, "fingerprint": "fp-rome", "hostname": "rome.local", "version": "W26"},
    )
    http_json(
        f"{site.url}/api/v1/activation/sync",
        {"fingerprint": "fp-rome", "version": "W26", "usage": {"CALL_RECORDING": 8}},
        token=activation["credential"],
    )
    page.reload()
    expect(page.locator("#over-use")).to_have_count(0)

    # Usage grows past what it holds; the very next sync reaches the portal.
    http_json(
        f"{site.url}/api/v1/activation/sync",
        {"fingerprint": "fp-rome", "version": "W26", "usage": {"CALL_RECORDING": 15}},
        token=activation["credential"],
    )
    page.reload()
    expect(page.locator("h1 .badge-over-use")).to_contain_text(
        "over use: Call Recording 15 in use, holds 10"
    )
    expect(page.locator("#over-use")).to_contain_text(
        "15 channels of Call Recording in use but holds 10"
    )
    shot(page, artifacts / "servers-over-use-page.png")

    page.goto(f"{site.url}/accounts/{account_id(site)}/servers/")
    row = page.locator("tr", has_text="PBX-Rome-test")
    expect(row.locator(".badge-over-use")).to_contain_text("Call Recording 15 in use, holds 10")
    expect(page.locator("tr", has_text="PBX-Milan-prod").locator(".badge-over-use")).to_have_count(
        0
    )
    shot(page, artifacts / "servers-over-use-list.png")

    # Its fix, as one action: the account has 20 channels left (50, Milan holds 20).
    page.goto(f"{site.url}/servers/{rome}/")
    fix = page.get_by_role("button", name="Assign 5 more of Call Recording (20 available)")
    expect(fix).to_be_visible()
    fix.click()
    expect(page.locator(".messages")).to_contain_text("now holds 15 channels of Call Recording")
    expect(page.locator("#over-use")).to_have_count(0)
    expect(page.locator("#qty-CALL_RECORDING")).to_have_value("15")
    page.reload()
    expect(page.locator("h1 .badge-over-use")).to_have_count(0)
    assert page.errors == []


# --- (e) duplicate names ---------------------------------------------------------------------


def test_a_duplicate_server_name_is_refused_with_a_form_error(site, new_page, artifacts):
    page = reseller_page(site, new_page)

    create_server(page, site, "pbx-milan-PROD")
    expect(page.locator("#id_name_errors")).to_contain_text(
        "A server named “pbx-milan-PROD” already exists in this Smart Account"
    )
    expect(page.get_by_label("Name")).to_have_value("pbx-milan-PROD")
    shot(page, artifacts / "servers-duplicate-create.png")

    page.goto(f"{site.url}/servers/{server_id(site, 'PBX-Rome-test')}/")
    page.get_by_text("Rename or deactivate").click()
    page.get_by_label("New name").fill("PBX-Milan-prod")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#rename-name-errors")).to_contain_text(
        "A server named “PBX-Milan-prod” already exists"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("PBX-Rome-test")
    shot(page, artifacts / "servers-duplicate-rename.png")
    assert page.errors == []


# --- (f) back office -------------------------------------------------------------------------


def test_vendor_staff_search_servers_and_activations_read_only(site, new_page, artifacts):
    page = new_page()
    log_in(page, site.url, VENDOR)
    page.goto(f"{site.url}/admin/tokens/server/")
    expect(page.locator("#result_list")).to_contain_text("PBX-Milan-prod")
    expect(page.get_by_role("link", name=re.compile("Add server", re.I))).to_have_count(0)

    for query, found, not_found in [
        ("demo-milan-fingerprint", ["PBX-Milan-prod"], ["PBX-Rome-test"]),
        ("pbx-milan.local", ["PBX-Milan-prod"], ["PBX-Rome-test"]),
        ("milan", ["PBX-Milan-prod"], ["PBX-Rome-test"]),
        ("Demo Customer", ["PBX-Milan-prod", "PBX-Rome-test"], []),
    ]:
        page.locator("#searchbar").fill(query)
        page.locator("#changelist-search input[type=submit]").click()
        for name in found:
            expect(page.locator("#result_list")).to_contain_text(name)
        for name in not_found:
            expect(page.locator("#result_list")).not_to_contain_text(name)
    shot(page, artifacts / "servers-back-office-search.png")

    page.get_by_role("link", name="PBX-Milan-prod").first.click()
    expect(page.locator("#content")).to_contain_text("demo-milan-fingerprint")
    expect(page.locator("input[name=_save]")).to_have_count(0)

    page.goto(f"{site.url}/admin/tokens/activationtoken/?q=demo-milan")
    expect(page.locator("#result_list")).to_contain_text("PBX-Milan-prod")
    expect(page.locator("#result_list")).to_contain_text("used")
    shot(page, artifacts / "servers-back-office-activations.png")
    assert page.errors == []
