from django.contrib import admin

from .models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "subject", "recipients", "sent_at", "attempts"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject", "object_id", "to"]
    readonly_fields = [
        "id",
        "kind",
        "object_id",
        "to",
        "context",
        "created_at",
        "sent_at",
        "subject",
        "attempts",
        "last_error",
    ]
    date_hierarchy = "created_at"

    @admin.display(description="To")
    def recipients(self, obj: OutboundEmail) -> str:
        return ", ".join(obj.to)

    def has_add_permission(self, request: object) -> bool:
        return False
