"""Every factory makes a valid row that agrees with itself."""

from datetime import timedelta

import pytest
from django.db import models

from smartaccounts.services import API_KEY_PREFIX

from . import factories

pytestmark = pytest.mark.django_db

ALL = [
    value
    for value in vars(factories).values()
    if isinstance(value, type)
    and issubclass(value, factories.factory.django.DjangoModelFactory)
    and value is not factories.factory.django.DjangoModelFactory
]


@pytest.mark.parametrize("made_by", ALL, ids=lambda f: f.__name__)
def test_each_factory_makes_a_saved_row(made_by):
    row = made_by()

    assert isinstance(row, models.Model)
    assert type(row).objects.filter(pk=row.pk).exists()
    row.full_clean(validate_unique=False)


def test_rows_hang_together():
    assignment = factories.AssignmentFactory()
    line = factories.OrderLineFactory()
    reminder = factories.ReminderFactory()
    told = factories.ToldThroughFactory()

    assert assignment.license.account == assignment.server.account
    assert line.license.account == line.order.account
    assert line.order.customer == line.order.account.organization
    assert line.product == line.license.product
    assert reminder.partner == reminder.digest.partner
    assert told.through - told.told_at == timedelta(days=told.threshold)


def test_an_api_key_factory_row_authenticates(client):
    raw = f"{API_KEY_PREFIX}{'k' * 40}"
    key = factories.ApiKeyFactory(raw=raw)

    response = client.get("/api/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert key.prefix == raw[:12]
    assert response.status_code == 200
