"""Schema pieces shared by every API view: the problem+json error body."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import Direction, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .errors import STATUS_FOR_CODE
from .problems import PROBLEM_CONTENT_TYPE

ProblemSerializer = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.ChoiceField(choices=sorted(STATUS_FOR_CODE)),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="validation_error: the messages of each field, by its dotted path.",
        ),
        "available": serializers.IntegerField(
            required=False, help_text="insufficient_capacity: how much is free to assign."
        ),
        "held": serializers.IntegerField(
            required=False, help_text="insufficient_capacity: what the server holds now."
        ),
        "retry_after": serializers.IntegerField(
            required=False, help_text="rate_limited: seconds to wait (also `Retry-After`)."
        ),
        "limit": serializers.IntegerField(
            required=False, help_text="payload_too_large: the largest body accepted, in bytes."
        ),
        "reason": serializers.CharField(
            required=False,
            help_text="token_invalid / credential_revoked / fingerprint_mismatch: why, in one "
            "word (`checksum`, `unknown`, `revoked`, `other_server`).",
        ),
        "minimum_version": serializers.CharField(
            required=False,
            help_text="version_unsupported: the lowest release of the product the service accepts.",
        ),
        "order_id": serializers.CharField(
            required=False, help_text="idempotency_conflict: the order placed under the reference."
        ),
        "licenses": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="order_locked: the licenses that are still locked.",
        ),
    },
)

_DESCRIPTIONS = {
    400: "Invalid input (`validation_error`).",
    401: "Missing or invalid credentials.",
    403: "The caller's role or organization may not do this (`permission_denied`).",
    404: "No such object visible to the caller (`not_found`).",
    409: "Conflict with the current state.",
    410: "Gone (expired).",
    413: "The body is over the documented limit (`payload_too_large`).",
    422: "Refused by a business rule.",
    426: "The release is below the product's minimum (`version_unsupported`).",
    429: "Too many failed attempts (`rate_limited`).",
    503: "Briefly unavailable (`service_unavailable`); retry after `Retry-After` seconds.",
}


def add_health_check(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook: /healthz is a plain Django view (it must stay
    cheaper than any API view), so its operation is added here."""
    result.setdefault("paths", {})["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Health check: 200 when the database answers one query",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": {
                    "description": "The service and its database answer.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"status": {"type": "string", "enum": ["ok"]}},
                                "required": ["status"],
                            }
                        }
                    },
                },
                "503": {
                    "description": _DESCRIPTIONS[503],
                    "content": {
                        PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                },
            },
        }
    }
    return result


def problem_responses(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """Error responses, documented with the media type they are served as."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer, description=_DESCRIPTIONS.get(status, "")
        )
        for status in statuses
    }


class AutoSchema(BaseAutoSchema):
    """Names a view's nested `InputSerializer` / `OutputSerializer` after the view, so the
    components of different operations do not collide ("ServerTokenOutput")."""

    def get_serializer_name(
        self, serializer: serializers.Serializer[Any], direction: Direction
    ) -> str:
        qualname = type(serializer).__qualname__
        if "." not in qualname:
            return super().get_serializer_name(serializer, direction)
        outer, inner = qualname.split(".")[-2:]
        return outer.removesuffix("Api") + inner.removesuffix("Serializer")


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Items per page (at most 200; default 50)."),
]


def paginated(name: str, item: serializers.BaseSerializer[Any]) -> serializers.Serializer[Any]:
    """The page envelope every list answers with: count, next, previous and results."""
    return inline_serializer(
        name=f"Paginated{name}",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


CURSOR_PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        str,
        description="Where the page starts: copy it from a `next` or `previous` link; one "
        "this list did not hand out answers 400 `validation_error`.",
    ),
    OpenApiParameter(
        "page", int, description="Page number, from 1, within the first 10,000 items only."
    ),
    OpenApiParameter("page_size", int, description="Items per page (at most 200; default 50)."),
]


def cursor_paginated(
    name: str, item: serializers.BaseSerializer[Any]
) -> serializers.Serializer[Any]:
    """The page envelope of a list that can grow large: `next` / `previous` carry a cursor and
    `count` stops counting past 10,000 (10,001 means "more than 10,000")."""
    return inline_serializer(
        name=f"Paginated{name}",
        fields={
            "count": serializers.IntegerField(
                help_text="How many items, counted up to 10,001 (10,001: more than 10,000)."
            ),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
