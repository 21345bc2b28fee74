from datetime import timedelta

import pytest
from django.utils import timezone

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db


def test_only_the_customers_reseller_turns_renewal_off(cast, client):
    end = timezone.now() + timedelta(days=100)
    lic = LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.console,
        kind="subscription",
        ends_at=end,
        care_ends_at=end,
    )
    url = f"/licenses/{lic.pk}/auto-renew/"

    for user in (cast.distributor_admin, cast.carol_admin):
        client.force_login(user)
        assert client.post(url, {"auto_renew": "off"}).status_code == 403
    lic.refresh_from_db()
    assert lic.auto_renew is True

    client.force_login(cast.alice_member)
    assert client.post(url, {"auto_renew": "off"}).status_code == 302
    lic.refresh_from_db()
    assert lic.auto_renew is False


def test_a_long_lapsed_subscription_is_not_revived_by_the_job(cast):
    from lifecycle.services import run_daily_jobs

    long_ago = timezone.now() - timedelta(days=60)
    lic = LicenseFactory(
        account=cast.carol_customer.smart_account,
        product=cast.console,
        kind="subscription",
        state="expired",
        ends_at=long_ago,
        care_ends_at=long_ago,
        auto_renew=True,
    )

    run_daily_jobs()

    lic.refresh_from_db()
    assert lic.state == "expired" and lic.ends_at == long_ago
