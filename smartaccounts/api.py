from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.pagination import paginated_response
from kernel.schema import PAGE_PARAMETERS, paginated, problem_responses

from .access import can_manage_accounts
from .actors import actor_for
from .models import License
from .selectors import (
    accounts_for,
    get_account_for,
    license_pool,
    licenses_by_product,
)


class AccountListApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.UUIDField()
        name = serializers.CharField()
        customer = serializers.SerializerMethodField()
        can_manage = serializers.SerializerMethodField()

        def get_customer(self, account: Any) -> dict[str, str]:
            org = account.organization
            return {"id": str(org.pk), "name": org.name, "email": org.email}

        def get_can_manage(self, account: Any) -> bool:
            can_manage: bool = self.context["can_manage"]
            return can_manage

    @extend_schema(
        operation_id="accounts_list",
        summary="Smart Accounts the caller may see (a customer: its own)",
        parameters=PAGE_PARAMETERS,
        responses={
            200: paginated("AccountList", OutputSerializer(many=True)),
            **problem_responses(401, 404),
        },
    )
    def get(self, request: Request) -> Response:
        actor = actor_for(request)
        accounts = accounts_for(actor).select_related("organization").order_by("name")
        context = {"can_manage": can_manage_accounts(actor)}
        return paginated_response(
            request,
            self,
            accounts,
            lambda page: self.OutputSerializer(page, many=True, context=context).data,
        )


class LicenseDetailSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=License.Kind.choices)
    quantity = serializers.IntegerField()
    assigned = serializers.IntegerField()
    state = serializers.ChoiceField(choices=License.State.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    care_ends_at = serializers.DateTimeField(allow_null=True)
    care_status = serializers.SerializerMethodField()
    auto_renew = serializers.BooleanField()
    # A field named like Field.source; DRF's metaclass takes it out of the class body.
    source = serializers.CharField(help_text="The order reference it came from.")  # type: ignore[assignment]

    def get_care_status(self, lic: License) -> str:
        return lic.care_status(self.context["now"])


def _rfc3339(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def license_detail(lic: License, now: Any) -> dict[str, Any]:
    """LicenseDetailSerializer's output, built directly: an account may hold thousands of
    licenses, and field-by-field serialization costs more than the query."""
    return {
        "id": str(lic.pk),
        "kind": lic.kind,
        "quantity": lic.quantity,
        "assigned": lic.assigned,
        "state": lic.state,
        "starts_at": _rfc3339(lic.starts_at),
        "ends_at": _rfc3339(lic.ends_at),
        "care_ends_at": _rfc3339(lic.care_ends_at),
        "care_status": lic.care_status(now),
        "auto_renew": lic.auto_renew,
        "source": lic.source,
    }


LICENSE_ROWS_PER_PAGE = 10


class AccountLicensesApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        product = serializers.CharField(source="product.code")
        name = serializers.CharField(source="product.name")
        unit = serializers.CharField(source="product.unit")
        total = serializers.IntegerField(help_text="Active capacity.")
        assigned = serializers.IntegerField()
        available = serializers.IntegerField()
        locked = serializers.IntegerField(help_text="In orders not yet unlocked.")
        care_status = serializers.CharField(
            help_text="active, expiring (within 60 days) or expired; empty with no active license."
        )
        care_ends_at = serializers.DateTimeField(allow_null=True)
        licenses = serializers.SerializerMethodField()

        @extend_schema_field(LicenseDetailSerializer(many=True))
        def get_licenses(self, row: Any) -> list[dict[str, Any]]:
            now = self.context["now"]
            return [license_detail(lic, now) for lic in row.licenses]

    @extend_schema(
        operation_id="accounts_licenses",
        summary="One row per application, with its licenses",
        parameters=PAGE_PARAMETERS,
        responses={
            200: paginated("AccountLicenses", OutputSerializer(many=True)),
            **problem_responses(401, 404),
        },
    )
    def get(self, request: Request, account_id: str) -> Response:
        account = get_account_for(actor_for(request), account_id)
        now = timezone.now()

        def render(rows: list[Any]) -> list[dict[str, Any]]:
            # The licenses of the page's applications only, in one query.
            grouped = licenses_by_product(account, [row.product.pk for row in rows])
            for row in rows:
                row.licenses = grouped[row.product.pk]
            return self.OutputSerializer(rows, many=True, context={"now": now}).data  # type: ignore[return-value]  # a list (many=True)

        # Ten applications a page by default: a large account holds thousands of licenses.
        return paginated_response(
            request, self, license_pool(account, now), render, page_size=LICENSE_ROWS_PER_PAGE
        )
