from typing import Any
from urllib.parse import urlencode

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.keyset import InvalidCursor, Key, api_page, decode_cursor, encode_cursor, seek
from kernel.pagination import paginated_response
from kernel.schema import (
    CURSOR_PAGE_PARAMETERS,
    PAGE_PARAMETERS,
    cursor_paginated,
    paginated,
    problem_responses,
)

from .access import can_manage_accounts
from .actors import actor_for
from .models import License
from .selectors import (
    LICENSE_ROW_ORDER,
    accounts_for,
    first_licenses_by_product,
    get_account_for,
    license_pool,
    licenses_of_row,
)

# By name; the pk breaks ties between accounts of the same name.
ACCOUNT_LIST_KEYS = (Key("name"), Key("pk"))


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
        description="By name. A partner may serve tens of thousands of customers: pages are "
        "found by cursor (`next`, `previous`) and `count` stops at 10,001.",
        parameters=CURSOR_PAGE_PARAMETERS,
        responses={
            200: cursor_paginated("AccountList", OutputSerializer(many=True)),
            **problem_responses(400, 401, 404),
        },
    )
    def get(self, request: Request) -> Response:
        actor = actor_for(request)
        context = {"can_manage": can_manage_accounts(actor)}
        # Seek on the name index (smartaccount_name_idx) and a capped count: an OFFSET page and
        # a count of every account grew with the number of customers.
        return api_page(
            request,
            accounts_for(actor).select_related("organization"),
            ACCOUNT_LIST_KEYS,
            lambda page: self.OutputSerializer(page, many=True, context=context).data,
            tag="api:accounts",
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
# Licenses listed inside one application's row; `licenses_next` leads to the rest.
LICENSES_PER_ROW = 50
LICENSE_KEYS = tuple(
    Key(name.removeprefix("-"), descending=name.startswith("-")) for name in LICENSE_ROW_ORDER
)


def _licenses_link(request: Request, code: str, last: License, tag: str) -> str:
    query = urlencode({"product": code, "licenses_cursor": encode_cursor(tag, LICENSE_KEYS, last)})
    return request.build_absolute_uri(f"{request.path}?{query}")


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
        licenses = serializers.SerializerMethodField(
            help_text=f"At most {LICENSES_PER_ROW} of the application's licenses (by state, "
            "newest first); `licenses_next` leads to the next ones."
        )
        license_count = serializers.IntegerField(
            help_text="How many licenses the application has (not revoked)."
        )
        licenses_next = serializers.URLField(
            allow_null=True,
            help_text="This application's row with its next licenses; null when all are listed.",
        )

        @extend_schema_field(LicenseDetailSerializer(many=True))
        def get_licenses(self, row: Any) -> list[dict[str, Any]]:
            now = self.context["now"]
            return [license_detail(lic, now) for lic in row.licenses]

    @extend_schema(
        operation_id="accounts_licenses",
        summary="One row per application, with its licenses",
        description=(
            f"Each row lists at most {LICENSES_PER_ROW} licenses; `license_count` says how many "
            "there are and `licenses_next` (with `product` and `licenses_cursor`) answers that "
            "row alone with the next ones."
        ),
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("product", str, description="Only this application's row (code)."),
            OpenApiParameter(
                "licenses_cursor",
                str,
                description="From a `licenses_next` link: the row's licenses after it. One this "
                "row did not hand out answers 400 `validation_error`.",
            ),
        ],
        responses={
            200: paginated("AccountLicenses", OutputSerializer(many=True)),
            **problem_responses(400, 401, 404),
        },
    )
    def get(self, request: Request, account_id: str) -> Response:
        account = get_account_for(actor_for(request), account_id)
        now = timezone.now()
        pool = license_pool(account, now)
        code = request.query_params.get("product")
        if code is not None:
            pool = [row for row in pool if row.product.code == code]
        cursor = request.query_params.get("licenses_cursor")
        tag = f"api:licenses:{account.pk}"
        if cursor:
            if code is None or not pool:
                raise ValidationError({"product": ["Give the application the link was for."]})
            row = pool[0]
            try:
                values, _ = decode_cursor(f"{tag}:{row.product.code}", LICENSE_KEYS, cursor)
            except InvalidCursor as exc:
                raise ValidationError(
                    {"licenses_cursor": ["Not a cursor of this row: follow licenses_next."]}
                ) from exc

        def render(rows: list[Any]) -> list[dict[str, Any]]:
            if cursor:
                row = rows[0]
                licenses = licenses_of_row(account, row.product.pk)
                window = seek(licenses, LICENSE_KEYS, size=LICENSES_PER_ROW, values=values)
                row.licenses, row.license_count = window.rows, licenses.count()
                more = window.has_next
            else:
                # The first licenses of the page's applications only, in one query.
                grouped = first_licenses_by_product(
                    account, [row.product.pk for row in rows], LICENSES_PER_ROW
                )
                for row in rows:
                    row.licenses, row.license_count = grouped[row.product.pk]
            for row in rows:
                if not cursor:
                    more = row.license_count > len(row.licenses)
                code = row.product.code
                row.licenses_next = (
                    _licenses_link(request, code, row.licenses[-1], f"{tag}:{code}")
                    if more and row.licenses
                    else None
                )
            return self.OutputSerializer(rows, many=True, context={"now": now}).data  # type: ignore[return-value]  # a list (many=True)

        # Ten applications a page by default: a large account holds thousands of licenses.
        return paginated_response(request, self, pool, render, page_size=LICENSE_ROWS_PER_PAGE)
