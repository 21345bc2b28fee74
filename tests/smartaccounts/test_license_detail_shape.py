from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.api import LicenseDetailSerializer, license_detail

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["perpetual", "subscription"])
def test_the_fast_license_rows_match_the_documented_serializer(kind):
    now = timezone.now()
    lic = LicenseFactory(
        kind=kind,
        ends_at=now + timedelta(days=40) if kind == "subscription" else None,
        source="PO-7",
    )

    fast = license_detail(lic, now)
    documented = LicenseDetailSerializer(lic, context={"now": now}).data

    assert fast == dict(documented)
