"""Lifecycle journeys as their people take them, in Chromium against gunicorn with production
settings and the demo data: the customer reads its history in words (and none of its
reseller's e-mails), the customer turns expiry reminders off from the reminder e-mail, and the
reseller finds a server using more than it holds in Needs attention and in its digest."""

import re

from .conftest import links_in, log_in, mail_text

CUSTOMER = "customer@example.com"
RESELLER = "reseller@example.com"


def account_id(site) -> str:
    return site.shell(
        "from smartaccounts.models import SmartAccount; "
        "print(SmartAccount.objects.get(name='Demo Customer').pk)"
    )


def test_the_customer_reads_its_history_in_words_without_partner_emails(site, new_page, artifacts):
    # The reseller sends the order e-mail of its locked order again: its own business.
    log_in(reseller := new_page(), site.url, RESELLER)
    reseller.get_by_role("link", name="Orders").first.click()
    reseller.get_by_role("link", name="DEMO-1002").click()
    reseller.get_by_role("button", name=re.compile("send", re.IGNORECASE)).click()
    reseller.wait_for_load_state()
    emails = site.shell(
        "from smartaccounts.models import AuditEvent; "
        "print(AuditEvent.objects.filter(action__startswith='order.email', "
        "account__name='Demo Customer').count())"
    )
    assert int(emails) >= 1

    page = new_page()
    log_in(page, site.url, CUSTOMER)
    page.get_by_role("link", name="History").click()
    page.wait_for_load_state()
    page.screenshot(path=artifacts / "lifecycle-01-customer-history.png", full_page=True)
    table = page.locator("table").inner_text()
    assert "Assigned 20 channels of Call Recording to PBX-Milan-prod" in table
    assert "Order DEMO-1001 unlocked" in table
    assert "Server PBX-Milan-prod created (production)" in table
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", table)
    assert "E-mail for" not in table and "reseller@example.com" not in table
    for code in ("capacity.assigned", "order.unlocked", "order.email", "tokens.server"):
        assert code not in table
    options = page.locator("#f-action option").all_inner_texts()
    assert "Order e-mail sent" not in options and "Capacity changed" in options
    assert page.errors == []

    # The same history, as the reseller reads it: its own e-mails are there.
    reseller.goto(f"{site.url}/accounts/{account_id(site)}/history/")
    assert "E-mail for Order DEMO-1002 sent" in reseller.locator("table").inner_text()
    reseller.screenshot(path=artifacts / "lifecycle-02-reseller-history.png", full_page=True)

    # The CSV the customer downloads: flat columns, codes and ids, no partner e-mails.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: PTH123, SIM115
    header = text.splitlines()[0]
    assert header.startswith("time_utc,actor,action,action_in_words,object_type,object_id")
    assert "capacity.assigned" in text and "order.email" not in text


def test_the_customer_turns_expiry_reminders_off_from_the_reminder(site, new_page, artifacts):
    # Contact Manager's care ends in 25 days: the daily job reminds the customer's people.
    site.shell(
        "from datetime import timedelta; from django.utils import timezone; "
        "from smartaccounts.models import License; "
        "License.objects.filter(account__name='Demo Customer', product__code='CONTACT_MANAGER')"
        ".update(care_ends_at=timezone.now() + timedelta(days=25))"
    )
    site.manage("run_daily_jobs")
    reminder = site.wait_for_mail(
        lambda m: CUSTOMER in str(m["To"]) and "end soon" in str(m["Subject"])
    )
    body = mail_text(reminder)
    assert "Contact Manager (200 users, perpetual): care ends on" in body
    assert "contact Demo Reseller (reseller@example.com)" in body
    settings_link = next(link for link in links_in(reminder) if "/settings/notifications/" in link)

    page = new_page()  # from the mail client: no session yet
    page.goto(settings_link)
    page.get_by_label("E-mail").fill(CUSTOMER)
    page.get_by_label("Password").fill("demo1234")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/settings/notifications/$"))
    box = page.get_by_label(re.compile("E-mail me when our care"))
    assert box.is_checked()
    page.screenshot(path=artifacts / "lifecycle-03-notifications-on.png", full_page=True)
    box.uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "Expiry reminders are off." in page.locator(".messages").inner_text()
    assert not page.get_by_label(re.compile("E-mail me when our care")).is_checked()
    page.screenshot(path=artifacts / "lifecycle-04-notifications-off.png", full_page=True)
    assert page.errors == []
    assert (
        site.shell(
            "from smartaccounts.models import User; "
            f"print(User.objects.get(email='{CUSTOMER}').expiry_reminders)"
        )
        == "False"
    )

    # 19 days on, the care end crosses 7 days: nobody left who wants to hear, nothing is sent.
    before = len(site.mails())
    sent = site.shell(
        "from datetime import timedelta; from django.utils import timezone; "
        "from lifecycle.services import send_customer_reminders; "
        "print(send_customer_reminders(now=timezone.now() + timedelta(days=19)))"
    )
    assert sent == "0"
    assert len(site.mails()) == before

    # The Overview says so too, with the way back.
    page.goto(f"{site.url}/accounts/{account_id(site)}/overview/")
    assert "are off for you" in page.locator("main").inner_text()


def test_the_reseller_sees_overuse_in_needs_attention_and_its_digest(site, new_page, artifacts):
    # PBX-Milan-prod holds 20 channels of Call Recording and now reports 80 in use.
    # Recorded as a sync would record it: the report, and the over-use flag it sets.
    site.shell(
        "from tokens.models import Server; "
        "from tokens.services import refresh_over_use; "
        "milan = Server.objects.filter(name='PBX-Milan-prod'); "
        "milan.update(reported_usage={'CALL_RECORDING': 80, 'ATTENDANT_CONSOLE': 2}); "
        "refresh_over_use(list(milan.values_list('pk', flat=True)))"
    )

    page = new_page()
    log_in(page, site.url, RESELLER)
    page.get_by_role("link", name="Customers").first.click()
    page.get_by_role("link", name="Demo Customer").first.click()
    page.get_by_role("link", name="Overview").click()
    page.wait_for_load_state()
    page.screenshot(path=artifacts / "lifecycle-05-overuse-overview.png", full_page=True)
    main = page.locator("main").inner_text()
    assert "Using more than they hold" in main
    assert "PBX-Milan-prod reports 80 channels of Call Recording in use against 20 assigned" in main
    assert "60 over" in main
    assert page.errors == []

    site.manage("run_daily_jobs")
    digest = site.wait_for_mail(
        lambda m: RESELLER in str(m["To"]) and "daily summary" in str(m["Subject"])
    )
    text = mail_text(digest)
    assert "Servers using more than they hold" in text
    assert "Demo Customer: PBX-Milan-prod reports 80 channels of Call Recording in use" in text
