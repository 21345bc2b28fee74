from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.keyset import Key, api_page
from kernel.pagination import paginated_response
from kernel.schema import (
    CURSOR_PAGE_PARAMETERS,
    PAGE_PARAMETERS,
    cursor_paginated,
    paginated,
    problem_responses,
)
from kernel.serializers import StrictSerializer
from smartaccounts.actors import actor_for
from smartaccounts.models import License
from smartaccounts.selectors import resellers_of
from smartaccounts.validators import CONTROL_CHARACTERS_MESSAGE, has_control_characters

from . import intake, services
from .models import TERMS_END_BEFORE, Order, OrderLine
from .selectors import LIST_LINES, get_order_for, get_order_to_release_for, order_summaries_for


class OrgRefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()


class CustomerRefSerializer(OrgRefSerializer):
    email = serializers.EmailField()


class LicenseOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    product = serializers.CharField(source="product.code")
    kind = serializers.ChoiceField(choices=License.Kind.choices)
    quantity = serializers.IntegerField()
    state = serializers.ChoiceField(choices=License.State.choices)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    care_ends_at = serializers.DateTimeField(allow_null=True)
    care_status = serializers.SerializerMethodField()
    auto_renew = serializers.BooleanField()

    def get_care_status(self, obj: License) -> str:
        return obj.care_status(self.context.get("now") or timezone.now())


class OrderLineOutputSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=OrderLine.Action.choices)
    product = serializers.CharField(source="product.code")
    kind = serializers.ChoiceField(choices=License.Kind.choices)
    quantity = serializers.IntegerField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    care_ends_at = serializers.DateTimeField(allow_null=True)
    auto_renew = serializers.BooleanField()
    license = serializers.UUIDField(source="license_id")


class OrderHeadSerializer(serializers.Serializer[Any]):
    """What an order is, in the list and on its own: who placed it, for whom, its state."""

    id = serializers.UUIDField()
    reference = serializers.CharField()
    state = serializers.ChoiceField(choices=Order.State.choices)
    created_at = serializers.DateTimeField()
    unlocked_at = serializers.DateTimeField(allow_null=True)
    placed_by = OrgRefSerializer()
    reseller = OrgRefSerializer()
    customer = CustomerRefSerializer()
    account = OrgRefSerializer()


class OrderOutputSerializer(OrderHeadSerializer):
    """An order with its lines and the licenses it created or renewed."""

    lines = OrderLineOutputSerializer(many=True, source="lines.all")
    licenses = serializers.SerializerMethodField()

    @extend_schema_field(LicenseOutputSerializer(many=True))
    def get_licenses(self, obj: Order) -> list[dict[str, Any]]:
        """The licenses the order created or renewed, once each, in line order."""
        seen: dict[object, License] = {}
        for line in obj.lines.all():
            seen.setdefault(line.license_id, line.license)
        return LicenseOutputSerializer(list(seen.values()), many=True, context=self.context).data  # type: ignore[return-value]  # a list (many=True)


class OrderSummarySerializer(OrderHeadSerializer):
    """A row of the orders list: the order with its line count and totals. Its licenses come
    with the order itself (GET /api/v1/orders/{id}); its first lines with `?expand=lines`."""

    line_count = serializers.IntegerField(help_text="How many lines the order has.")
    total_quantity = serializers.IntegerField(
        help_text="The capacity its new and expansion lines order, summed (renewal lines "
        "extend terms and add none)."
    )
    # Absent unless asked for: the attribute is there only when the list prefetched it.
    lines = OrderLineOutputSerializer(
        many=True,
        source="first_lines",
        required=False,
        help_text=f"With `?expand=lines` only: the order's first {LIST_LINES} lines by "
        "position (`line_count` says whether there are more; the order itself carries them "
        "all).",
    )


def _order_body(order_id: object, request: Request) -> dict[str, Any]:
    order = get_order_for(actor_for(request), order_id)
    return OrderOutputSerializer(order, context={"now": timezone.now()}).data


class _RefusesControlCharacters:
    """Refuses a line break or other control character anywhere in the value, before the
    field trims it (a trailing CR/LF is refused too, not silently dropped): these values
    reach e-mail headers (S24)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str) and has_control_characters(data):
            raise serializers.ValidationError(CONTROL_CHARACTERS_MESSAGE, code="control_characters")
        value: str = super().to_internal_value(data)  # type: ignore[misc]
        return value


class HeaderTextField(_RefusesControlCharacters, serializers.CharField):
    pass


class HeaderEmailField(_RefusesControlCharacters, serializers.EmailField):
    pass


class CustomerInputSerializer(StrictSerializer):
    name = HeaderTextField(max_length=200)
    email = HeaderEmailField()
    external_id = HeaderTextField(max_length=100, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True)


class LineInputSerializer(StrictSerializer):
    product = serializers.CharField(max_length=64, required=False)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    kind = serializers.ChoiceField(choices=License.Kind.choices, required=False)
    ends_at = serializers.DateTimeField(
        required=False, help_text=f"Before {TERMS_END_BEFORE:%Y-%m-%d}."
    )
    care_ends_at = serializers.DateTimeField(
        required=False, help_text=f"Before {TERMS_END_BEFORE:%Y-%m-%d}."
    )
    auto_renew = serializers.BooleanField(required=False)
    renews = serializers.UUIDField(required=False, help_text="Renewal lines: the license renewed.")


# Newest first; the pk breaks ties between orders of the same instant.
ORDER_LIST_KEYS = (Key("created_at", descending=True), Key("pk", descending=True))


class OrderListCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        reference = HeaderTextField(max_length=100)
        customer = CustomerInputSerializer()
        reseller = serializers.UUIDField(
            required=False, help_text="Distributors only: the reseller ordered for."
        )
        # max_length goes on to the ListSerializer that many=True makes; the stubs omit it.
        lines = LineInputSerializer(many=True, allow_empty=False, max_length=200)  # type: ignore[call-arg]

        def to_order_data(self) -> intake.OrderData:
            data = self.validated_data
            customer = data["customer"]
            return intake.OrderData(
                reference=data["reference"],
                reseller=data.get("reseller"),
                customer=intake.CustomerData(
                    name=customer["name"],
                    email=customer["email"].lower(),
                    external_id=customer.get("external_id", ""),
                    country=customer.get("country", "").upper(),
                ),
                lines=[intake.LineData(**line) for line in data["lines"]],
            )

    @extend_schema(
        operation_id="orders_list",
        summary="Orders placed by the caller (or for it, as reseller)",
        description=(
            "Newest first. Each row carries the order's line count and totals, not its lines "
            "and licenses: a page costs the same whatever the orders hold. "
            f"`?expand=lines` adds each order's first {LIST_LINES} lines; the order itself "
            "(`GET /api/v1/orders/{id}`) carries all its lines and licenses."
        ),
        parameters=[
            *CURSOR_PAGE_PARAMETERS,
            OpenApiParameter(
                "expand",
                str,
                enum=["lines"],
                description=f"`lines`: each row carries its first {LIST_LINES} lines.",
            ),
        ],
        responses={
            200: cursor_paginated("OrderList", OrderSummarySerializer(many=True)),
            **problem_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: Request) -> Response:
        expand = request.query_params.get("expand", "")
        if expand not in ("", "lines"):
            raise ValidationError({"expand": ['Only "lines" can be expanded.']})
        orders = order_summaries_for(actor_for(request), lines=LIST_LINES if expand else 0)
        return api_page(
            request,
            orders,
            ORDER_LIST_KEYS,
            lambda page: OrderSummarySerializer(page, many=True).data,
            tag="api:orders",
        )

    @extend_schema(
        operation_id="orders_create",
        summary="Place an order",
        description=(
            "New and expansion lines create locked licenses in the customer's Smart Account; "
            "renewal lines (`renews`) extend a license at once. Replaying a reference with the "
            "same body answers 200 with the same order and sends no second e-mail. An order "
            "made only of renewal lines has nothing to unlock and is `unlocked` at once."
        ),
        request=InputSerializer,
        responses={
            201: OrderOutputSerializer,
            200: OpenApiResponse(OrderOutputSerializer, description="Replay of the same order."),
            **problem_responses(400, 401, 403, 409),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = actor_for(request)
        order, created = intake.place_order(
            placed_by=actor.organization, data=serializer.to_order_data(), actor=actor
        )
        return Response(
            _order_body(order.pk, request),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        summary="An order and its licenses",
        responses={200: OrderOutputSerializer, **problem_responses(401, 404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        return Response(_order_body(order_id, request))


PARTIAL_UNLOCK_UNAVAILABLE = (
    "Releasing some lines only is not available yet; send no body to unlock the whole order."
)


class OrderUnlockApi(APIView):
    class InputSerializer(StrictSerializer):
        lines = serializers.ListField(
            child=serializers.UUIDField(),
            required=False,
            max_length=200,
            help_text="Not available yet: a body naming lines is refused (400) and changes "
            "nothing.",
        )

        def validate_lines(self, value: list[Any]) -> list[Any]:
            # Unlocking is irreversible and e-mails the customer: a request for some lines is
            # never taken as one for all of them.
            raise serializers.ValidationError(PARTIAL_UNLOCK_UNAVAILABLE)

    @extend_schema(
        operation_id="orders_unlock",
        summary="Unlock an order's licenses",
        description=(
            "Idempotent: unlocking an unlocked order changes nothing and answers 200. Only the "
            "organization that placed the order may unlock it: a reseller sees an order its "
            "distributor placed for it but gets `404 not_found` here. On the first unlock the "
            "customer's admins get one e-mail (a customer nobody of which can log in yet gets "
            "an invitation instead). The body is empty (or `{}`): releasing some lines only "
            "(`lines`) is not available yet and is refused with `400 validation_error`, "
            "as is any other member."
        ),
        request=InputSerializer,
        responses={200: OrderOutputSerializer, **problem_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, order_id: str) -> Response:
        actor = actor_for(request)
        order = get_order_to_release_for(actor, order_id)
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        services.unlock_order(order=order, actor=actor)
        return Response(_order_body(order.pk, request))


class ResellerListApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.UUIDField()
        name = serializers.CharField()

    @extend_schema(
        operation_id="resellers_list",
        summary="A distributor's resellers, to name in its orders",
        parameters=PAGE_PARAMETERS,
        responses={
            200: paginated("ResellerList", OutputSerializer(many=True)),
            **problem_responses(401, 403, 404),
        },
    )
    def get(self, request: Request) -> Response:
        actor = actor_for(request)
        org = actor.organization
        if org is None or org.kind != org.Kind.DISTRIBUTOR:
            raise PermissionDenied("Only distributors have resellers.")
        return paginated_response(
            request,
            self,
            resellers_of(org),
            lambda page: self.OutputSerializer(page, many=True).data,
        )
