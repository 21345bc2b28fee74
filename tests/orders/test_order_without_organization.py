"""A signed-in user of no organization (a superuser made on the command line) who posts an
order is refused like any other non-partner, not answered with a server error."""

import pytest
from rest_framework.test import APIClient

from orders.models import Order

from ..factories import UserFactory
from .payloads import URL, assert_problem, order_body

pytestmark = pytest.mark.django_db


def test_a_session_without_an_organization_cannot_place_orders(cast):
    staff = UserFactory(
        email="root@vendor.example", organization=None, is_staff=True, is_superuser=True
    )
    client = APIClient()
    client.force_login(staff)

    assert_problem(client.post(URL, order_body(), format="json"), 403, "permission_denied")
    assert not Order.objects.exists()
