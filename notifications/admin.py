from django.contrib import admin

from .models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "subject",
        "recipients",
        "state",
        "sent_at",
        "attempts",
        "next_attempt_at",
    ]
    # "Could not be delivered" lists the e-mails given up on (licensing_outbox_failed).
    list_filter = ["state", "kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject", "object_id", "to"]
    readonly_fields = [
        "id",
        "kind",
        "object_id",
        "to",
        "context",
        "created_at",
        "state",
        "sent_at",
        "next_attempt_at",
        "failed_at",
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
