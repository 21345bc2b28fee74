"""The endpoints AppSuite servers call: keys, activation, sync; and the offline exchange."""

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing_portal.authentication import actor_for, bearer_token, client_address
from licensing_portal.problems import PROBLEM_CONTENT_TYPE, problem
from licensing_portal.schema import problem_responses
from licensing_portal.throttling import activation_failures
from tokens import services
from tokens.errors import TokenError
from tokens.selectors import get_server_for
from tokens.signing import jwk, published_keys

GUESSING_CODES = {"token_invalid", "token_expired", "token_used"}


def _rate_limited(retry_after: int) -> Response:
    body = problem(
        429,
        "rate_limited",
        "Too many failed attempts from this address. Try again later.",
        retry_after=retry_after,
    )
    response = Response(body, status=429, headers={"Retry-After": str(retry_after)})
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class JwkSerializer(serializers.Serializer):
    kty = serializers.CharField()
    crv = serializers.CharField()
    alg = serializers.CharField()
    use = serializers.CharField()
    kid = serializers.CharField()
    x = serializers.CharField(help_text="The raw Ed25519 public key, base64url.")


class KeysApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        keys = JwkSerializer(many=True)

    @extend_schema(
        operation_id="keys_list",
        summary="Public keys that verify license documents (JWK set)",
        auth=[],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        keys = [jwk(key) for key in published_keys(timezone.now())]
        # A rotated key signs only after this lifetime (tokens.signing.create_signing_key).
        max_age = int(settings.KEYS_MAX_AGE.total_seconds())
        return Response({"keys": keys}, headers={"Cache-Control": f"public, max-age={max_age}"})


class ActivationApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=200)
        fingerprint = serializers.CharField(max_length=200)
        hostname = serializers.CharField(max_length=255, required=False, allow_blank=True)
        version = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        server_id = serializers.UUIDField()
        credential = serializers.CharField(help_text="Bearer secret for syncs; shown once.")
        license = serializers.CharField(help_text="The signed license document (compact JWS).")

    @extend_schema(
        operation_id="activation_create",
        summary="Activate a server with its token",
        auth=[],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **problem_responses(400, 401, 409, 410, 429),
        },
    )
    def post(self, request: Request) -> Response:
        address = client_address(request)
        retry_after = activation_failures.retry_after(address)
        if retry_after is not None:
            return _rate_limited(retry_after)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            activation = services.activate_server(
                token=data["token"],
                fingerprint=data["fingerprint"],
                hostname=data.get("hostname", ""),
                version=data.get("version", ""),
                address=address,
            )
        except TokenError as exc:
            if exc.code in GUESSING_CODES:
                activation_failures.record_failure(address)
            raise
        body = {
            "server_id": activation.server.pk,
            "credential": activation.credential,
            "license": activation.document.token,
        }
        return Response(
            self.OutputSerializer(body).data,
            status=status.HTTP_201_CREATED,
            headers={"ETag": activation.document.etag},
        )


def _well_formed_sync(body: Any) -> dict[str, Any] | None:
    """The body of an ordinary sync, accepted without building a serializer (the fleet's hot
    path); None sends the request through SyncApi.InputSerializer, which holds the same rules
    and reports what is wrong."""
    if not isinstance(body, dict) or not body.keys() <= {"fingerprint", "version", "usage"}:
        return None
    fingerprint, version = body.get("fingerprint"), body.get("version", "")
    usage = body.get("usage", {})
    if not (isinstance(fingerprint, str) and 0 < len(fingerprint) <= 200 and fingerprint.strip()):
        return None
    if not (isinstance(version, str) and len(version) <= 64) or not isinstance(usage, dict):
        return None
    if not all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in usage.items()):
        return None
    return {"fingerprint": fingerprint.strip(), "version": version.strip(), "usage": usage}


class SyncApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        fingerprint = serializers.CharField(max_length=200)
        version = serializers.CharField(max_length=64, required=False, allow_blank=True)
        usage = serializers.DictField(
            child=serializers.IntegerField(min_value=0), required=False, default=dict
        )

    class OutputSerializer(serializers.Serializer):
        license = serializers.CharField()

    @extend_schema(
        operation_id="activation_sync",
        summary="Report usage and get the current license document",
        description=(
            "Authenticate with `Authorization: Bearer <credential>`. Send the last ETag in "
            "`If-None-Match` to get `304` when nothing changed."
        ),
        auth=[],
        request=InputSerializer,
        parameters=[
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)
        ],
        responses={
            200: OutputSerializer,
            304: OpenApiResponse(description="Not modified"),
            **problem_responses(400, 401, 409),
        },
    )
    def post(self, request: Request) -> Response:
        data = _well_formed_sync(request.data)
        if data is None:  # anything unusual gets the serializer's full checks and messages
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        result = services.sync_server(
            credential=bearer_token(request) or "",
            fingerprint=data["fingerprint"],
            version=data.get("version", ""),
            usage=data["usage"],
            address=client_address(request),
            if_none_match=request.headers.get("If-None-Match"),
        )
        if result.document is None:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": result.etag})
        return Response({"license": result.document.token}, headers={"ETag": result.etag})


class OfflineActivationApi(APIView):
    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=200)
        fingerprint = serializers.CharField(max_length=200)
        hostname = serializers.CharField(max_length=255, required=False, allow_blank=True)
        version = serializers.CharField(max_length=64, required=False, allow_blank=True)
        nonce = serializers.CharField(max_length=200)

    class OutputSerializer(serializers.Serializer):
        license = serializers.CharField(help_text="The signed license file (compact JWS).")

    @extend_schema(
        operation_id="servers_offline_activation",
        summary="Exchange an offline request file for a license file (perpetual only)",
        request=InputSerializer,
        responses={201: OutputSerializer, **problem_responses(400, 401, 403, 404, 409, 410, 422)},
    )
    def post(self, request: Request, server_id: str) -> Response:
        actor = actor_for(request)
        server = get_server_for(actor, server_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        token = services.activate_offline(
            server=server,
            request=services.OfflineRequest(
                token=data["token"],
                fingerprint=data["fingerprint"],
                hostname=data.get("hostname", ""),
                version=data.get("version", ""),
                nonce=data["nonce"],
            ),
            actor=actor,
        )
        return Response({"license": token}, status=status.HTTP_201_CREATED)
