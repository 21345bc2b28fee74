from datetime import timedelta

import pytest
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.errors import AccountError
from smartaccounts.renewals import issue_evaluation
from tokens import services
from tokens.errors import TokenError
from tokens.models import Server

from ..factories import LicenseFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def test_an_offline_server_draws_only_on_perpetual_capacity(cast):
    account = cast.carol_customer.smart_account
    end = timezone.now() + timedelta(days=100)
    perpetual = LicenseFactory(account=account, product=cast.recording, quantity=3)
    subscription = LicenseFactory(
        account=account,
        product=cast.recording,
        kind="subscription",
        quantity=10,
        ends_at=end,
        care_ends_at=end,
    )
    server = services.create_server(account=account, name="o", purpose="other", actor=SYSTEM)
    Server.objects.filter(pk=server.pk).update(state=Server.State.OFFLINE)

    services.assign_capacity(server=server, product=cast.recording, quantity=3, actor=SYSTEM)
    with pytest.raises(TokenError) as refused:
        services.assign_capacity(server=server, product=cast.recording, quantity=4, actor=SYSTEM)

    assert refused.value.code == "insufficient_capacity"
    perpetual.refresh_from_db()
    subscription.refresh_from_db()
    assert (perpetual.assigned, subscription.assigned) == (3, 0)


def test_evaluations_only_for_applications_sold_as_subscriptions(cast):
    with pytest.raises(AccountError):
        issue_evaluation(
            account=cast.carol_customer.smart_account,
            product=cast.billing,
            quantity=1,
            actor=SYSTEM,
        )
    lic = issue_evaluation(
        account=cast.carol_customer.smart_account, product=cast.console, quantity=2, actor=SYSTEM
    )
    assert lic.kind == "subscription" and lic.auto_renew is False and lic.source == "evaluation"
