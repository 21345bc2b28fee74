"""The endpoints AppSuite servers call: keys, activation, sync; and the offline exchange."""

import functools
import json
import time
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponseNotModified, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.metrics import observe_sync
from kernel.parsers import has_surrogate
from kernel.problems import PROBLEM_CONTENT_TYPE, problem, problem_for
from kernel.schema import problem_responses
from kernel.serializers import StrictSerializer
from kernel.throttling import activation_failures
from smartaccounts.actors import actor_for, client_address
from smartaccounts.authentication import bearer_token
from smartaccounts.models import Product
from tokens import exchange
from tokens.api import (
    ETAG_HEADER,
    NO_STORE,
    NO_STORE_HEADER,
    RETRY_AFTER_HEADER,
    WWW_AUTHENTICATE_HEADER,
)
from tokens.errors import TokenError
from tokens.limits import FINGERPRINT_MAX, HOSTNAME_MAX, NONCE_MAX, TOKEN_INPUT_MAX, VERSION_MAX
from tokens.selectors import get_server_for
from tokens.signing import jwk, published_keys

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView

# What counts against an address: a token that is not one (unknown, mistyped, replaced). A used or
# expired token is a real one, presented by whoever holds it (a retry storm after a lost answer,
# an old script); counting it would lock a data centre out of its next, valid activation.
GUESSING_CODES = {"token_invalid"}

# Reported usage: counts below a billion, for at most this many products. The catalog is far
# smaller; the sync service refuses codes outside it, this bound keeps that one look-up small.
USAGE_LIMIT = 10**9
USAGE_MAX_PRODUCTS = 1000
_product_code_length = Product._meta.get_field("code").max_length
assert _product_code_length is not None  # a CharField has one
PRODUCT_CODE_LENGTH: int = _product_code_length


class ServerCredentialAuthentication(BaseAuthentication):
    """Names the server credential a sync carries (for the schema and the 401 challenge). The
    credential is checked by the sync service itself, in the one query a sync makes."""

    def authenticate(self, request: Request) -> None:
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ServerCredentialScheme(OpenApiAuthenticationExtension):
    target_class = ServerCredentialAuthentication
    name = "serverCredential"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A server credential (returned once by activation).",
        }


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


# What a verifier checks, in order (docs/device-protocol.md states the same rules).
VERIFYING_A_DOCUMENT = """\
A license document is trusted through a chain: the vendor's **root key** (Ed25519, pinned by the
verifier out of band; `manage.py root_public_key` prints it as `ed25519:<base64url x>`)
endorses each **signing key**, and the signing key signs the document. The endorsement travels
beside each key, as its `endorsement` member. A verifier checks, and refuses on any failure:

1. The document is a compact JWS whose protected header has `alg: EdDSA`, `typ: license+jwt` and
   a `kid`; the key of that `kid` is in this set (`kty: OKP`, `crv: Ed25519`).
2. The key's `endorsement` is a compact JWS with protected header `alg: EdDSA`,
   `typ: key-endorsement+jwt` (its `kid` names the root: the RFC 7638 thumbprint, shortened),
   and its signature verifies with the **root** public key.
3. The endorsement's payload names this very key: its `kid`, `x` and `crv` equal the key's
   `kid`, `x` and `crv` (`Ed25519`). An endorsement copied onto any other key fails here.
4. The document's signature verifies with the key's `x`.
5. The document's `iat` lies inside the endorsement's window: `nbf <= iat <= exp` (a verifier
   may allow its clock skew before `nbf`; the reference agent allows 300 s).
6. The document is not dated in the future: `iat <= now + skew` (the reference agent: 300 s).
   An online document whose lease `exp` has passed no longer licenses anything.

The service signs only with a key whose endorsement holds for the moment it signs, so every
document it issues passes these checks."""


class JwkSerializer(serializers.Serializer[Any]):
    kty = serializers.CharField(help_text="`OKP`.")
    crv = serializers.CharField(help_text="`Ed25519`.")
    alg = serializers.CharField(help_text="`EdDSA`.")
    use = serializers.CharField(help_text="`sig`.")
    kid = serializers.CharField(help_text="The key's id: the `kid` of the documents it signs.")
    x = serializers.CharField(help_text="The raw Ed25519 public key, base64url.")
    endorsement = serializers.CharField(
        required=False,
        help_text=(
            "The vendor root's endorsement of this key: a compact JWS, protected header "
            "`{alg: EdDSA, typ: key-endorsement+jwt, kid: <root's id>}`, payload `{iss, kid, "
            "x, crv, nbf, exp, iat}`: the key's `kid`, `x` and `crv`, and the window "
            "`nbf`..`exp` (seconds since the epoch) in which documents it signs may be dated; "
            "`iat` is when it was endorsed. Verify it with the root public key and trust the "
            "key only when the payload's `kid`, `x` and `crv` equal this key's. Absent only "
            "while a newly rotated key waits for vendor staff to endorse it; such a key signs "
            "nothing until then."
        ),
    )


class KeysApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer[Any]):
        keys = JwkSerializer(many=True)

    @extend_schema(
        operation_id="keys_list",
        summary="Public keys that verify license documents (JWK set)",
        description=VERIFYING_A_DOCUMENT,
        auth=[],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        keys = [jwk(key) for key in published_keys(timezone.now())]
        # A rotated key signs only after this lifetime (tokens.signing.create_signing_key).
        max_age = int(settings.KEYS_MAX_AGE.total_seconds())
        return Response({"keys": keys}, headers={"Cache-Control": f"public, max-age={max_age}"})


class ActivationApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=TOKEN_INPUT_MAX)
        fingerprint = serializers.CharField(max_length=FINGERPRINT_MAX)
        hostname = serializers.CharField(max_length=HOSTNAME_MAX, required=False, allow_blank=True)
        version = serializers.CharField(max_length=VERSION_MAX, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer[Any]):
        server_id = serializers.UUIDField()
        credential = serializers.CharField(help_text="Bearer secret for syncs; shown once.")
        license = serializers.CharField(help_text="The signed license document (compact JWS).")

    @extend_schema(
        operation_id="activation_create",
        summary="Activate a server with its token",
        auth=[],
        request=InputSerializer,
        parameters=[ETAG_HEADER, NO_STORE_HEADER, WWW_AUTHENTICATE_HEADER, RETRY_AFTER_HEADER],
        responses={
            201: OutputSerializer,
            **problem_responses(400, 401, 409, 410, 429, 503),
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
            activation = exchange.activate_server(
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
            headers={"ETag": activation.document.etag, **NO_STORE},
        )


def _well_formed_sync(body: Any) -> dict[str, Any] | None:
    """The body of an ordinary sync, accepted without building a serializer (the fleet's hot
    path); None sends the request through SyncApi.InputSerializer, which holds the same rules
    and reports what is wrong."""
    if not isinstance(body, dict) or not body.keys() <= {"fingerprint", "version", "usage"}:
        return None
    fingerprint, version = body.get("fingerprint"), body.get("version", "")
    usage = body.get("usage", {})
    if not (
        isinstance(fingerprint, str)
        and 0 < len(fingerprint) <= FINGERPRINT_MAX
        and fingerprint.strip()
    ):
        return None
    if not (isinstance(version, str) and len(version) <= VERSION_MAX) or not isinstance(
        usage, dict
    ):
        return None
    if len(usage) > USAGE_MAX_PRODUCTS or not all(
        type(k) is str
        and 0 < len(k) <= PRODUCT_CODE_LENGTH
        and "\x00" not in k
        and type(v) is int
        and 0 <= v < USAGE_LIMIT
        for k, v in usage.items()
    ):
        return None
    if "\x00" in fingerprint or "\x00" in version:
        return None
    # A lone surrogate is no text (the serializer names it); the codes are checked in one go.
    if has_surrogate(fingerprint) or has_surrogate(version) or has_surrogate("".join(usage)):
        return None
    return {"fingerprint": fingerprint.strip(), "version": version.strip(), "usage": usage}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": USAGE_LIMIT - 1},
        "maxProperties": USAGE_MAX_PRODUCTS,
    }
)
class UsageField(serializers.DictField):
    child = serializers.IntegerField(min_value=0, max_value=USAGE_LIMIT - 1)

    def to_internal_value(self, data: Any) -> dict[str, int]:
        value = super().to_internal_value(data)
        if len(value) > USAGE_MAX_PRODUCTS:
            raise serializers.ValidationError(f"At most {USAGE_MAX_PRODUCTS} products.")
        if any(
            not 0 < len(code) <= PRODUCT_CODE_LENGTH or "\x00" in code or has_surrogate(code)
            for code in value
        ):
            raise serializers.ValidationError(
                f"A product code is 1 to {PRODUCT_CODE_LENGTH} characters of text, none of "
                "them NUL."
            )
        return value


# What an ordinary sync asks to be answered in; any other Accept goes through DRF's negotiation.
PLAIN_ACCEPT = frozenset({"", "*/*", "application/json", "application/*", PROBLEM_CONTENT_TYPE})
COMPACT_JSON = {"separators": (",", ":"), "ensure_ascii": False}


def _plain_sync(request: HttpRequest) -> HttpResponseBase | None:
    """An ordinary sync, answered without DRF's request machinery.

    Thousands of servers sync every hour; for them DRF's request wrapper, content negotiation
    and renderer cost as much as the sync itself. A POST of a well-formed JSON body asking for
    JSON is answered here by the same service, with the same status codes, headers and
    problem documents. Everything else (another method or media type, an unusual Accept, a
    body the serializer must explain) returns None and goes through SyncApi as before."""
    if (
        request.method != "POST"
        or request.content_type != "application/json"
        or (request.content_params or {}).get("charset", "utf-8").lower() != "utf-8"
        or request.META.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT
    ):
        return None
    try:
        data = _well_formed_sync(json.loads(request.body))
    except (ValueError, RecursionError):
        return None
    if data is None:
        return None
    try:
        result = exchange.sync_server(
            credential=bearer_token(request) or "",
            fingerprint=data["fingerprint"],
            version=data["version"],
            usage=data["usage"],
            address=client_address(request),
            if_none_match=request.META.get("HTTP_IF_NONE_MATCH"),
        )
    except Exception as exc:
        found = problem_for(exc, {"request": request})
        if found is None:
            raise
        body, headers = found
        return JsonResponse(
            body,
            status=body["status"],
            headers=headers,
            content_type=PROBLEM_CONTENT_TYPE,
            json_dumps_params=COMPACT_JSON,
        )
    if result.document is None:
        return HttpResponseNotModified(headers={"ETag": result.etag})
    return JsonResponse(
        {"license": result.document.token},
        headers={"ETag": result.etag},
        json_dumps_params=COMPACT_JSON,
    )


def _sync_outcome(response: HttpResponseBase) -> str:
    """The problem's code of a refused sync (for the metrics), else ""."""
    if response.status_code < 400:
        return ""
    data = getattr(response, "data", None)
    if data is None and response.get("Content-Type") == PROBLEM_CONTENT_TYPE:
        data = json.loads(response.content)  # type: ignore[attr-defined]  # a JsonResponse
    return str(data.get("code", "")) if isinstance(data, dict) else ""


class SyncApi(APIView):
    # No permission class: the service admits a sync by its credential, and the schema then
    # lists the credential as required (AllowAny would add an anonymous alternative).
    authentication_classes = [ServerCredentialAuthentication]
    permission_classes = []

    @classmethod
    def as_view(cls, **initkwargs: Any) -> "AsView[GenericView]":
        """DRF's view behind the plain path: the URL, the schema and CSRF exemption see
        SyncApi (the wrapper carries the view's attributes), while an ordinary sync is
        answered by _plain_sync."""
        drf_view = super().as_view(**initkwargs)

        @functools.wraps(drf_view)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            started = time.perf_counter()
            response = _plain_sync(request) or drf_view(request, *args, **kwargs)
            observe_sync(
                response.status_code, _sync_outcome(response), time.perf_counter() - started
            )
            return response

        return cast("AsView[GenericView]", view)

    class InputSerializer(StrictSerializer):
        fingerprint = serializers.CharField(max_length=FINGERPRINT_MAX)
        version = serializers.CharField(max_length=VERSION_MAX, required=False, allow_blank=True)
        usage = UsageField(
            required=False,
            default=dict,
            help_text="Use per product code of the catalog (a code outside it: 400 "
            "`validation_error`), each a count from 0 to 999,999,999.",
        )
        usage_report = serializers.DictField(
            required=False,
            help_text="A usage report signed by the server, with its `sequence`. Accepted; "
            "not yet verified nor acknowledged (no `usage_ack` in the answer).",
        )

    class OutputSerializer(serializers.Serializer[Any]):
        license = serializers.CharField()

    @extend_schema(
        operation_id="activation_sync",
        summary="Report usage and get the current license document",
        description=(
            "Authenticate with `Authorization: Bearer <credential>`. Send the last ETag in "
            "`If-None-Match` to get `304` when nothing changed: RFC 9110 rules, a list of tags "
            "compared weakly, or `*` (which matches any current document, changed or not). "
            "The tag is weak: one tag covers re-signed documents with the same content. A sync "
            "is a read with a report attached: the usage is recorded either way, and a match "
            "answers `304` (not `412`)."
        ),
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description='Entity tags (`W/"…"`, `"…"`, a comma-separated list) or `*`.',
            ),
            ETAG_HEADER,
            WWW_AUTHENTICATE_HEADER,
        ],
        responses={
            200: OutputSerializer,
            304: OpenApiResponse(description="Not modified"),
            **problem_responses(400, 401, 409, 503),
        },
    )
    def post(self, request: Request) -> Response:
        data = _well_formed_sync(request.data)
        if data is None:  # anything unusual gets the serializer's full checks and messages
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        result = exchange.sync_server(
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
    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=TOKEN_INPUT_MAX)
        fingerprint = serializers.CharField(max_length=FINGERPRINT_MAX)
        hostname = serializers.CharField(max_length=HOSTNAME_MAX, required=False, allow_blank=True)
        version = serializers.CharField(max_length=VERSION_MAX, required=False, allow_blank=True)
        nonce = serializers.CharField(max_length=NONCE_MAX)

    class OutputSerializer(serializers.Serializer[Any]):
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
        token = exchange.activate_offline(
            server=server,
            request=exchange.OfflineRequest(
                token=data["token"],
                fingerprint=data["fingerprint"],
                hostname=data.get("hostname", ""),
                version=data.get("version", ""),
                nonce=data["nonce"],
            ),
            actor=actor,
        )
        return Response({"license": token}, status=status.HTTP_201_CREATED)
