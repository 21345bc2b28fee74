from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from smartaccounts.actors import Actor, PortalRequest, client_address

from . import services
from .models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "position",
        "action",
        "product",
        "kind",
        "quantity",
        "ends_at",
        "care_ends_at",
        "license",
    )

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "placed_by",
        "reseller",
        "customer",
        "state",
        "created_at",
        "unlocked_at",
    ]
    list_filter = ["state", "created_at"]
    search_fields = ["reference", "id", "placed_by__name", "reseller__name", "customer__name"]
    list_select_related = ["placed_by", "reseller", "customer"]
    readonly_fields = [
        "id",
        "reference",
        "placed_by",
        "reseller",
        "customer",
        "account",
        "state",
        "created_at",
        "unlocked_at",
        "unlocked_by",
    ]
    exclude = ["request_digest", "unlock_secret_hash"]
    inlines = [OrderLineInline]
    date_hierarchy = "created_at"
    actions = ["unlock_selected", "resend_email"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders arrive through the API

    @admin.action(description="Unlock selected orders")
    def unlock_selected(self, request: PortalRequest, queryset: QuerySet[Order]) -> None:
        actor = Actor.for_user(request.user, client_address(request))
        count = sum(services.unlock_order(order=order, actor=actor)[1] for order in queryset)
        self.message_user(request, f"{count} order(s) unlocked.", messages.SUCCESS)

    @admin.action(description="Re-send the order e-mail (new unlock link)")
    def resend_email(self, request: PortalRequest, queryset: QuerySet[Order]) -> None:
        actor = Actor.for_user(request.user, client_address(request))
        sent = 0
        for order in queryset.filter(state=Order.State.LOCKED):
            services.resend_order_email(order=order, actor=actor)
            sent += 1
        self.message_user(request, f"{sent} e-mail(s) queued.", messages.SUCCESS)


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = [
        "order",
        "position",
        "action",
        "product",
        "kind",
        "quantity",
        "ends_at",
        "care_ends_at",
    ]
    list_filter = ["action", "kind", "product"]
    search_fields = ["order__reference", "product__code", "license__id"]
    list_select_related = ["order", "product"]
    readonly_fields = [field.name for field in OrderLine._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
