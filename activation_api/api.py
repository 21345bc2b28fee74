"""The endpoints AppSuite servers call: keys, activation, sync; and the offline exchange."""

import io
import time
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseNotModified, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.mediatypes import media_type_matches
from rest_framework.views import APIView

from kernel.metrics import observe_sync
from kernel.parsers import JSONParser, has_surrogate
from kernel.problems import PROBLEM_CONTENT_TYPE, problem, problem_for
from kernel.schema import problem_responses
from kernel.serializers import StrictSerializer, validate_once_built
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


# The methods the sync answers (its `Allow`, on every answer as DRF's views send it).
SYNC_ALLOW = "POST, OPTIONS"
JSON_MEDIA_TYPE = "application/json"
COMPACT_JSON = {"separators": (",", ":"), "ensure_ascii": False}  # as DRF's JSONRenderer


# The one validator of a sync's body: the view runs it, the schema documents it (no docstring
# of its own: the schema shows StrictSerializer's, as before).
class SyncInput(StrictSerializer):
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


SYNC_INPUT = SyncInput()  # built once: see validate_once_built


def _answers_json(request: HttpRequest) -> bool:
    """The Accept header admits JSON, by DRF's matching (kernel.parsers.ContentNegotiation:
    asking for problem documents is asking for JSON)."""
    accept = request.META.get("HTTP_ACCEPT", "*/*")
    if PROBLEM_CONTENT_TYPE in accept:
        return True
    return any(media_type_matches(JSON_MEDIA_TYPE, token.strip()) for token in accept.split(","))


def _sync_body(request: HttpRequest) -> Any:
    """The parsed body, as DRF's request would parse it: none is {}, a body that is not JSON is
    415, JSON is read by the API's parser (depth and surrogate checks, 400 on a bad one)."""
    body = request.body
    if not body:
        return {}
    content_type = request.META.get("CONTENT_TYPE", "")
    if not media_type_matches(JSON_MEDIA_TYPE, content_type):
        raise exceptions.UnsupportedMediaType(content_type)
    context = {"encoding": request.encoding or settings.DEFAULT_CHARSET}
    return JSONParser().parse(io.BytesIO(body), content_type, context)


def _answer_sync(request: HttpRequest) -> HttpResponseBase:
    if request.GET.get("format", "json") != "json":  # DRF's ?format= override: none but JSON
        raise Http404
    if not _answers_json(request):
        raise exceptions.NotAcceptable()
    if request.method == "OPTIONS":
        return JsonResponse(
            {"name": "Sync", "renders": [JSON_MEDIA_TYPE], "parses": [JSON_MEDIA_TYPE]}
        )
    if request.method != "POST":
        raise exceptions.MethodNotAllowed(request.method or "")
    data = validate_once_built(SYNC_INPUT, _sync_body(request))
    result = exchange.sync_server(
        credential=bearer_token(request) or "",
        fingerprint=data["fingerprint"],
        version=data.get("version", ""),
        usage=data["usage"],
        address=client_address(request),
        if_none_match=request.META.get("HTTP_IF_NONE_MATCH"),
    )
    if result.document is None:
        return HttpResponseNotModified(headers={"ETag": result.etag})
    return JsonResponse(
        {"license": result.document.token},
        headers={"ETag": result.etag},
        json_dumps_params=COMPACT_JSON,
    )


@csrf_exempt  # a bearer credential, never a cookie
def sync(request: HttpRequest) -> HttpResponseBase:
    """POST /api/v1/activation/sync: a plain Django view, the sync's one way through.

    Thousands of servers sync every hour; DRF's request wrapper, negotiation and renderer cost
    a third of a sync (docs/sync-path.md), so the view does what they did for this one
    operation: Accept (406), method (405 with Allow), media type (415), the API's JSON parser,
    SyncInput (400), the service, and problem documents for every refusal. SyncApi documents
    it in the schema."""
    started = time.perf_counter()
    code = ""
    try:
        response = _answer_sync(request)
    except Exception as exc:
        found = problem_for(exc, {"request": request})
        if found is None:
            raise
        body, headers = found
        code = body["code"]
        response = JsonResponse(
            body,
            status=body["status"],
            headers=headers,
            content_type=PROBLEM_CONTENT_TYPE,
            json_dumps_params=COMPACT_JSON,
        )
    response["Allow"] = SYNC_ALLOW
    observe_sync(response.status_code, code, time.perf_counter() - started)
    return response


class SyncApi(APIView):
    """The sync in the schema: as_view() gives the plain view `sync`, which answers every
    request; drf-spectacular reads the operation from here (the view carries `cls`)."""

    # No permission class: the service admits a sync by its credential, and the schema then
    # lists the credential as required (AllowAny would add an anonymous alternative).
    authentication_classes = [ServerCredentialAuthentication]
    permission_classes = []
    InputSerializer = SyncInput

    @classmethod
    def as_view(cls, **initkwargs: Any) -> "AsView[GenericView]":
        def view(request: HttpRequest) -> HttpResponseBase:
            return sync(request)

        view.cls = cls  # type: ignore[attr-defined]  # what DRF's schema generators look for
        view.initkwargs = initkwargs  # type: ignore[attr-defined]
        return cast("AsView[GenericView]", csrf_exempt(view))

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
        raise AssertionError("never routed: SyncApi.as_view() answers with sync()")


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
