"""The back office: every model is there for vendor staff, with lists that search and filter."""

import pytest
from django.contrib import admin
from django.urls import reverse

from orders.models import Order

from .orders.payloads import URL, order_body

pytestmark = pytest.mark.django_db


def test_every_domain_model_is_in_the_back_office():
    registered = {model._meta.label for model in admin.site._registry}
    expected = {
        "smartaccounts.Organization",
        "smartaccounts.PartnerLink",
        "smartaccounts.User",
        "smartaccounts.SmartAccount",
        "smartaccounts.Product",
        "smartaccounts.License",
        "smartaccounts.ApiKey",
        "smartaccounts.AuditEvent",
        "orders.Order",
        "orders.OrderLine",
        "notifications.OutboundEmail",
    }
    assert expected <= registered


def test_every_changelist_and_change_page_renders_for_vendor_staff(cast, alice_api, client):
    alice_api.post(URL, order_body("PO-ADMIN"), format="json")
    client.force_login(cast.vendor_staff)

    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(changelist, {"q": "a"} if model_admin.search_fields else {})
        assert response.status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change


def test_partners_cannot_enter_the_back_office(cast, client):
    client.force_login(cast.alice_admin)
    response = client.get(reverse("admin:orders_order_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_action_unlocks_through_the_service(cast, alice_api, client):
    order_id = alice_api.post(URL, order_body("PO-ACT"), format="json").json()["id"]
    client.force_login(cast.vendor_staff)

    response = client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "unlock_selected", "_selected_action": [order_id]},
    )

    assert response.status_code == 302
    order = Order.objects.get(pk=order_id)
    assert order.state == "unlocked" and order.unlocked_by == "staff@vendor.example"
