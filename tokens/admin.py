"""The back office's view of servers and activation tokens: read-only lists vendor staff search
when a partner or customer calls (by server name, account, fingerprint or host name).
Changes go through the portal and its services, which check capacity and write the audit."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import ActivationToken, Assignment, Server


class ReadOnly:
    """Lists and pages to look at, nothing to add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class AssignmentInline(ReadOnlyInline):
    model = Assignment
    fields = readonly_fields = ("license", "quantity", "updated_at")
    verbose_name_plural = "capacity held"


class TokenInline(ReadOnlyInline):
    model = ActivationToken
    fields = readonly_fields = ("created_at", "expires_at", "used_at", "revoked_at", "created_by")
    verbose_name_plural = "activation tokens (the secrets are never stored)"


@admin.register(Server)
class ServerAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "account",
        "purpose",
        "state",
        "hostname",
        "short_fingerprint",
        "reported_version",
        "last_sync_at",
        "activated_at",
    ]
    list_filter = ["state", "purpose"]
    search_fields = [
        "name",
        "account__name",
        "account__organization__name",
        "fingerprint",
        "hostname",
        "=id",
    ]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    ordering = ["account__name", "name"]
    fields = readonly_fields = (
        "id",
        "account",
        "name",
        "purpose",
        "state",
        "hostname",
        "fingerprint",
        "reported_version",
        "reported_usage",
        "created_at",
        "activated_at",
        "first_sync_at",
        "last_sync_at",
        "clone_suspected_at",
        "deactivated_at",
    )
    inlines = [AssignmentInline, TokenInline]

    @admin.display(description="fingerprint")
    def short_fingerprint(self, server: Server) -> str:
        return server.fingerprint[:16] + ("…" if len(server.fingerprint) > 16 else "")


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(s, s) for s in ("valid", "used", "revoked", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        now = timezone.now()
        value = self.value()
        if value == "used":
            return queryset.filter(used_at__isnull=False)
        if value == "revoked":
            return queryset.filter(used_at__isnull=True, revoked_at__isnull=False)
        open_tokens = queryset.filter(used_at__isnull=True, revoked_at__isnull=True)
        if value == "expired":
            return open_tokens.filter(expires_at__lte=now)
        if value == "valid":
            return open_tokens.filter(expires_at__gt=now)
        return None


@admin.register(ActivationToken)
class ActivationTokenAdmin(ReadOnlyAdmin):
    """Activations: each token minted, and when (and whether) a server used it."""

    list_display = [
        "server",
        "account",
        "status_now",
        "created_at",
        "created_by",
        "expires_at",
        "used_at",
        "server_hostname",
    ]
    list_filter = [TokenStatusFilter]
    search_fields = [
        "server__name",
        "server__account__name",
        "server__fingerprint",
        "server__hostname",
        "created_by",
        "=server__id",
    ]
    list_select_related = ["server__account"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "server",
        "created_at",
        "created_by",
        "expires_at",
        "used_at",
        "revoked_at",
    )

    @admin.display(description="account", ordering="server__account__name")
    def account(self, token: ActivationToken) -> str:
        return token.server.account.name

    @admin.display(description="status")
    def status_now(self, token: ActivationToken) -> str:
        return token.status(timezone.now())

    @admin.display(description="host name", ordering="server__hostname")
    def server_hostname(self, token: ActivationToken) -> str:
        return token.server.hostname or "—"
