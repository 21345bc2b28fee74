from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.pagination import paginated_response
from kernel.schema import PAGE_PARAMETERS, paginated, problem_responses
from kernel.serializers import StrictSerializer
from smartaccounts.actors import actor_for
from smartaccounts.models import Product
from smartaccounts.selectors import get_account_for

from . import services
from .limits import SERVER_NAME_MAX
from .models import Server
from .selectors import get_server_for, held_lines, servers_of

# Secrets in a body: no cache anywhere may keep the answer (RFC 9111 5.2.2.5).
NO_STORE = {"Cache-Control": "no-store"}

ETAG_HEADER = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=[200, 201, 304],
    description='Weak (`W/"…"`): the same tag covers re-signed documents with the same '
    "content. Send it back in `If-None-Match`.",
)
RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After", int, OpenApiParameter.HEADER, response=[429], description="Seconds to wait."
)
WWW_AUTHENTICATE_HEADER = OpenApiParameter(
    "WWW-Authenticate",
    str,
    OpenApiParameter.HEADER,
    response=[401],
    description='The bearer challenge: `Bearer realm="api", error="invalid_token"` when the '
    "presented secret was refused (RFC 6750).",
)
NO_STORE_HEADER = OpenApiParameter(
    "Cache-Control",
    str,
    OpenApiParameter.HEADER,
    response=[200, 201],
    description="`no-store` whenever the body carries a secret (a credential, a minted token).",
)


class HeldSerializer(serializers.Serializer[Any]):
    product = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    unit = serializers.CharField(source="product.unit")
    quantity = serializers.IntegerField(help_text="Capacity assigned to the server.")
    used = serializers.IntegerField(allow_null=True, help_text="As last reported by the server.")


class ServerSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    purpose = serializers.ChoiceField(choices=Server.Purpose.choices)
    state = serializers.ChoiceField(choices=Server.State.choices)
    account = serializers.SerializerMethodField()
    hostname = serializers.CharField()
    version = serializers.CharField(source="reported_version")
    last_sync_at = serializers.DateTimeField(allow_null=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    deactivated_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    usage = serializers.DictField(child=serializers.IntegerField(), source="reported_usage")
    clone_suspected = serializers.SerializerMethodField()
    assignments = serializers.SerializerMethodField()

    @extend_schema_field(
        {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    )
    def get_account(self, server: Server) -> dict[str, str]:
        return {"id": str(server.account_id), "name": server.account.name}

    def get_clone_suspected(self, server: Server) -> bool:
        return server.clone_suspected_at is not None

    @extend_schema_field(HeldSerializer(many=True))
    def get_assignments(self, server: Server) -> list[dict[str, Any]]:
        return HeldSerializer(held_lines(server), many=True).data  # type: ignore[return-value]  # a list (many=True)


def _server_body(server_id: object, request: Request) -> dict[str, Any]:
    return ServerSerializer(get_server_for(actor_for(request), server_id)).data


class AccountServersApi(APIView):
    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=SERVER_NAME_MAX)
        purpose = serializers.ChoiceField(
            choices=Server.Purpose.choices, default=Server.Purpose.PRODUCTION
        )

    @extend_schema(
        operation_id="accounts_servers_list",
        summary="The account's servers",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("state", str, enum=Server.State.values, description="Only these."),
        ],
        responses={
            200: paginated("ServerList", ServerSerializer(many=True)),
            **problem_responses(401, 404),
        },
    )
    def get(self, request: Request, account_id: str) -> Response:
        account = get_account_for(actor_for(request), account_id)
        servers = servers_of(account)
        state = request.query_params.get("state")
        if state in Server.State.values:
            servers = servers.filter(state=state)
        return paginated_response(
            request, self, servers, lambda page: ServerSerializer(page, many=True).data
        )

    @extend_schema(
        operation_id="accounts_servers_create",
        summary="Create a server (pending until activated)",
        request=InputSerializer,
        responses={201: ServerSerializer, **problem_responses(400, 401, 403, 404)},
    )
    def post(self, request: Request, account_id: str) -> Response:
        actor = actor_for(request)
        account = get_account_for(actor, account_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = services.create_server(account=account, actor=actor, **serializer.validated_data)
        return Response(_server_body(server.pk, request), status=status.HTTP_201_CREATED)


class ServerDetailApi(APIView):
    @extend_schema(
        operation_id="servers_retrieve",
        summary="A server with its assignments, state, last sync, version and usage",
        responses={200: ServerSerializer, **problem_responses(401, 404)},
    )
    def get(self, request: Request, server_id: str) -> Response:
        return Response(_server_body(server_id, request))

    @extend_schema(
        operation_id="servers_deactivate",
        summary="Deactivate: frees its capacity and revokes its credential",
        description="Idempotent: deactivating a deactivated server answers 200 again.",
        responses={200: ServerSerializer, **problem_responses(401, 403, 404)},
    )
    def delete(self, request: Request, server_id: str) -> Response:
        actor = actor_for(request)
        server = get_server_for(actor, server_id)
        services.deactivate_server(server=server, actor=actor)
        return Response(_server_body(server.pk, request))


class ServerAssignmentApi(APIView):
    class InputSerializer(StrictSerializer):
        quantity = serializers.IntegerField(min_value=0, max_value=10_000_000)

    class OutputSerializer(serializers.Serializer[Any]):
        product = serializers.CharField()
        quantity = serializers.IntegerField(help_text="What the server now holds.")
        available = serializers.IntegerField(help_text="What the account has left to assign.")
        token = serializers.CharField(
            required=False, help_text="Only when minted by this call: shown once."
        )
        token_expires_at = serializers.DateTimeField(required=False)
        server = ServerSerializer()

    @extend_schema(
        operation_id="servers_assignments_update",
        summary="Set how much of a product the server holds (0 frees it)",
        request=InputSerializer,
        parameters=[NO_STORE_HEADER, WWW_AUTHENTICATE_HEADER],
        responses={200: OutputSerializer, **problem_responses(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request, server_id: str, product: str) -> Response:
        actor = actor_for(request)
        server = get_server_for(actor, server_id)
        product_obj = get_object_or_404(Product, code=product)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.assign_capacity(
            server=server,
            product=product_obj,
            quantity=serializer.validated_data["quantity"],
            actor=actor,
        )
        body: dict[str, Any] = {
            "product": product_obj.code,
            "quantity": result.quantity,
            "available": result.available,
            "server": _server_body(server.pk, request),
        }
        if result.token is None:
            return Response(body)
        body["token"] = result.token.raw
        body["token_expires_at"] = result.token.expires_at
        return Response(body, headers=NO_STORE)


class ServerTokenApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField(help_text="Shown once: paste it into the AppSuite server.")
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="servers_token_create",
        summary="Mint a new activation token for a pending server (revokes the old one)",
        request=None,
        parameters=[NO_STORE_HEADER, WWW_AUTHENTICATE_HEADER],
        responses={201: OutputSerializer, **problem_responses(401, 403, 404, 409)},
    )
    def post(self, request: Request, server_id: str) -> Response:
        actor = actor_for(request)
        server = get_server_for(actor, server_id)
        minted = services.mint_token(server=server, actor=actor)
        data = {"token": minted.raw, "expires_at": minted.expires_at}
        return Response(
            self.OutputSerializer(data).data, status=status.HTTP_201_CREATED, headers=NO_STORE
        )
