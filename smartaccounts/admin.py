from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from . import services
from .actors import Actor, PortalRequest, client_address
from .forms import EvaluationForm, LicenseAdminForm
from .models import (
    ApiKey,
    AuditEvent,
    License,
    Organization,
    PartnerLink,
    Product,
    SmartAccount,
    User,
)


class PartnerLinkInline(admin.TabularInline):
    model = PartnerLink
    fk_name = "reseller"
    extra = 0
    autocomplete_fields = ["customer"]
    verbose_name = "customer served"
    verbose_name_plural = "customers served"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "email", "country", "created_at"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "email", "id"]
    filter_horizontal = ["resellers"]
    inlines = [PartnerLinkInline]
    readonly_fields = ["id", "created_at"]


@admin.register(PartnerLink)
class PartnerLinkAdmin(admin.ModelAdmin):
    list_display = ["reseller", "customer", "external_id", "created_at"]
    search_fields = ["reseller__name", "customer__name", "external_id"]
    autocomplete_fields = ["reseller", "customer"]
    list_select_related = ["reseller", "customer"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "full_name",
        "organization",
        "role",
        "is_active",
        "is_staff",
        "last_login",
    ]
    list_filter = ["role", "is_active", "is_staff", "organization__kind"]
    search_fields = ["email", "full_name", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "organization", "role"]}),
        (
            "Access",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "organization", "role", "password1", "password2"],
            },
        ),
    ]


@admin.register(SmartAccount)
class SmartAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "created_at"]
    search_fields = ["name", "organization__name", "id"]
    list_select_related = ["organization"]
    readonly_fields = ["id", "created_at"]
    actions = ["issue_evaluation"]

    @admin.action(description="Issue an evaluation license (expires on its own)")
    def issue_evaluation(
        self, request: PortalRequest, queryset: QuerySet[SmartAccount]
    ) -> TemplateResponse | None:
        form = EvaluationForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            actor = Actor.for_user(request.user, client_address(request))
            for account in queryset:
                services.issue_evaluation(
                    account=account,
                    product=form.cleaned_data["product"],
                    quantity=form.cleaned_data["quantity"],
                    days=form.cleaned_data["days"],
                    actor=actor,
                )
            self.message_user(
                request,
                f"Evaluation licenses issued to {queryset.count()} account(s).",
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/smartaccounts/issue_evaluation.html",
            {
                **self.admin_site.each_context(request),
                "title": "Issue an evaluation license",
                "form": form,
                "accounts": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "unit", "allows_perpetual", "allows_subscription", "is_active"]
    list_filter = ["allows_perpetual", "allows_subscription", "is_active"]
    search_fields = ["code", "name"]


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    form = LicenseAdminForm
    list_display = [
        "id",
        "account",
        "product",
        "kind",
        "quantity",
        "assigned",
        "state",
        "ends_at",
        "care_ends_at",
        "auto_renew",
    ]
    list_filter = ["state", "kind", "auto_renew", "product"]
    search_fields = ["id", "account__name", "product__code", "product__name"]
    list_select_related = ["account", "product"]
    autocomplete_fields = ["account", "product"]
    readonly_fields = ["id", "assigned", "created_at"]
    date_hierarchy = "created_at"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["id", "prefix", "key_hash", "created_by", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys are created in the portal or with `manage.py create_api_key`, so the raw key
        # can be shown once to whoever made it.
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "actor_label",
        "organization",
        "account",
        "object_type",
        "object_id",
        "address",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "actor_label", "object_id", "organization__name", "account__name"]
    list_select_related = ["organization", "account"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: AuditEvent | None = None) -> list[str]:
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
