"""The partner's unlock journey as it happens: an order comes in from the partner's system,
the e-mail's link is opened in a browser with no session (a mail client), the partner confirms,
and opening the used link again says the order is already unlocked."""

import json
import urllib.request

from .conftest import links_in


def place_order(site, reference: str, org: str = "Demo Reseller") -> dict:
    key = site.manage("create_api_key", "--org", org).stdout.strip().splitlines()[-1]
    body = {
        "reference": reference,
        "customer": {"name": "Acme S.p.A.", "email": "it@acme.example", "external_id": "ACME-1"},
        "lines": [
            {
                "product": "CALL_RECORDING",
                "quantity": 50,
                "kind": "perpetual",
                "care_ends_at": "2030-01-31T00:00:00Z",
            }
        ],
    }
    request = urllib.request.Request(
        f"{site.url}/api/v1/orders",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        return json.load(answer)


def test_partner_unlocks_from_the_email_in_a_fresh_browser(site, new_page, artifacts):
    order = place_order(site, "PO-BROWSER-1")
    assert order["state"] == "locked"
    mail = site.wait_for_mail(lambda m: "PO-BROWSER-1" in str(m["Subject"]))
    unlock_url = next(link for link in links_in(mail) if "/unlock/" in link)
    assert unlock_url.startswith(site.url)

    page = new_page()
    page.goto(unlock_url)
    page.screenshot(path=artifacts / "unlock-01-confirm.png", full_page=True)
    page.get_by_role("button", name="Confirm unlock").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().lower().count("unlocked"), page.content()[:2000]
    page.screenshot(path=artifacts / "unlock-02-done.png", full_page=True)
    assert page.errors == []

    state = site.shell(
        f"from orders.models import Order; print(Order.objects.get(pk='{order['id']}').state)"
    )
    assert state == "unlocked"

    # The same link, opened again later in another fresh browser.
    again = new_page()
    again.goto(unlock_url)
    assert "already unlocked" in again.locator("h1").inner_text()

    # The capability never reaches the access log (S28).
    secret = unlock_url.rstrip("/").rsplit("/", 1)[-1]
    logged = site.access_log.read_text()
    assert "/unlock/[redacted]" in logged
    assert secret not in logged
