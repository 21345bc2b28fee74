"""Automatic renewal of subscriptions, with time travel: on, off (portal and order line),
twice at once, after a renewal line, perpetual care, the portal toggle and evaluations."""

from datetime import UTC, datetime

from smartaccounts.models import AuditEvent, License

from ..conftest import at

CAROL = {"name": "Carol Corp", "email": "it@carol.example"}
END = at(days=20)  # 2031-03-30 06:00 UTC
RENEWED_END = datetime(2032, 3, 30, 6, 0, tzinfo=UTC)  # END + 12 months


def renewed_events(lic: License):
    return AuditEvent.objects.filter(action="license.renewed", object_id=str(lic.pk))


def evaluation_action(client, account, product, **fields):
    return client.post(
        "/admin/smartaccounts/smartaccount/",
        {
            "action": "issue_evaluation",
            "_selected_action": [str(account.pk)],
            "product": product.pk,
            **fields,
        },
    )
