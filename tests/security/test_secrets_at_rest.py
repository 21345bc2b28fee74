"""S2: no column anywhere holds a raw secret — only keyed hashes of them."""

import re

import pytest
from django.apps import apps
from django.core import mail
from django.db import models

from tokens import exchange
from tokens import services as server_services

from ..conftest import api_client_for
from ..factories import LicenseFactory
from ..orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db

UNLOCK = re.compile(r"/unlock/([^/\s\"<>]+)/")


def every_text_value():
    for model in apps.get_models():
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        if not fields:
            continue
        for row in model.objects.values_list(*fields):
            for value in row:
                if value:
                    yield model._meta.label, str(value)


def test_no_table_holds_an_api_key_token_credential_or_unlock_secret(
    cast, django_capture_on_commit_callbacks, system_actor
):
    client = api_client_for(cast.alice_reseller)
    api_key = client._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    with django_capture_on_commit_callbacks(execute=True):
        order = client.post(URL, order_body("PO-SECRET"), format="json").json()
    unlock_secret = UNLOCK.search(mail.outbox[0].body).group(1)

    account = cast.carol_customer.smart_account
    LicenseFactory(account=account, product=cast.recording, quantity=5)
    server = server_services.create_server(
        account=account, name="pbx", purpose="production", actor=system_actor
    )
    token = server_services.assign_capacity(
        server=server, product=cast.recording, quantity=2, actor=system_actor
    ).token.raw
    activation = exchange.activate_server(token=token, fingerprint="fp", hostname="h", version="v")
    secrets = {
        "api key": api_key,
        "unlock secret": unlock_secret,
        "activation token": token,
        "server credential": activation.credential,
    }
    assert order["state"] == "locked"

    leaks = [
        (label, what)
        for label, value in every_text_value()
        for what, secret in secrets.items()
        if secret in value
    ]
    assert leaks == []


@pytest.fixture
def system_actor():
    from smartaccounts.actors import Actor

    return Actor.system("tests")
