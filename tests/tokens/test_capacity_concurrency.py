"""S1 on real PostgreSQL: concurrent assignments never over-assign; the database backs it up."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from smartaccounts.models import License
from tokens.models import Assignment, Server

from ..concurrency import run_together
from ..conftest import api_client_for, requires_postgres
from ..factories import LicenseFactory, ServerFactory
from ..orders.payloads import assert_problem

THREADS = 8
EACH = 3


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_grant_exactly_the_capacity(cast):
    account = cast.carol_customer.smart_account
    now = timezone.now()
    licenses = [
        LicenseFactory(account=account, product=cast.recording, quantity=6),
        LicenseFactory(
            account=account,
            product=cast.recording,
            kind=License.Kind.SUBSCRIPTION,
            quantity=4,
            ends_at=now + timedelta(days=365),
        ),
    ]
    servers = [ServerFactory(account=account, name=f"PBX {n}") for n in range(THREADS)]
    header = api_client_for(cast.carol_customer)._credentials["HTTP_AUTHORIZATION"]

    def put(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        return client.put(
            f"/api/v1/servers/{servers[index].pk}/assignments/CALL_RECORDING",
            {"quantity": EACH},
            format="json",
        )

    responses = run_together(THREADS, put)

    granted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(granted) == 3, [r.status_code for r in responses]
    for response in refused:
        assert_problem(response, 409, "insufficient_capacity")
    assert Assignment.objects.aggregate(n=Sum("quantity"))["n"] == 9 <= 10
    assert Server.objects.filter(assignments__isnull=False).distinct().count() == 3
    for lic in licenses:
        lic.refresh_from_db()
        held = Assignment.objects.filter(license=lic).aggregate(n=Sum("quantity"))["n"] or 0
        assert lic.assigned == held <= lic.quantity
    # Each granted server holds exactly what it asked for.
    for server in servers:
        held = Assignment.objects.filter(server=server).aggregate(n=Sum("quantity"))["n"] or 0
        assert held in (0, EACH)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_assignments_never_over_assign(cast):
    """The same race judged by the database alone, whatever the responses look like."""
    account = cast.carol_customer.smart_account
    licenses = [
        LicenseFactory(account=account, product=cast.recording, quantity=6),
        LicenseFactory(account=account, product=cast.recording, quantity=4),
    ]
    servers = [ServerFactory(account=account, name=f"PBX {n}") for n in range(THREADS)]
    header = api_client_for(cast.carol_customer)._credentials["HTTP_AUTHORIZATION"]

    def put(index):
        # Server errors come back as 500 responses instead of exceptions in the thread.
        client = APIClient(raise_request_exception=False)
        client.credentials(HTTP_AUTHORIZATION=header)
        return client.put(
            f"/api/v1/servers/{servers[index].pk}/assignments/CALL_RECORDING",
            {"quantity": EACH},
            format="json",
        ).status_code

    statuses = run_together(THREADS, put)

    assert statuses.count(409) == THREADS - 3, statuses
    assert Assignment.objects.aggregate(n=Sum("quantity"))["n"] == 9
    for lic in licenses:
        lic.refresh_from_db()
        held = Assignment.objects.filter(license=lic).aggregate(n=Sum("quantity"))["n"] or 0
        assert lic.assigned == held <= lic.quantity


@pytest.mark.django_db
def test_a_raw_update_past_the_quantity_hits_the_check_constraint(cast):
    lic = LicenseFactory(account=cast.carol_customer.smart_account, product=cast.recording)

    with pytest.raises(IntegrityError), transaction.atomic():
        License.objects.filter(pk=lic.pk).update(assigned=F("quantity") + 1)

    lic.refresh_from_db()
    assert lic.assigned == 0
    # At the quantity is still allowed: the constraint is `assigned <= quantity`, not `<`.
    License.objects.filter(pk=lic.pk).update(assigned=F("quantity"))
    lic.refresh_from_db()
    assert lic.assigned == lic.quantity
