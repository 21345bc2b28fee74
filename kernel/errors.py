"""The base of every app's domain exception. Services raise these; front doors translate them.

Each error code of the contract (docs/api-contract.md) has one HTTP status, in one table: the
API's problem+json answers and the portal's pages both read it from the error
(``DomainError.status``)."""

from typing import Any

from django.core.exceptions import PermissionDenied

# The contract's error codes (docs/api-contract.md) and the HTTP status each is answered with.
STATUS_FOR_CODE: dict[str, int] = {
    "validation_error": 400,
    "not_authenticated": 401,
    "token_invalid": 401,
    "credential_revoked": 401,
    "permission_denied": 403,
    "partner_access_revoked": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "idempotency_conflict": 409,
    "insufficient_capacity": 409,
    "order_locked": 409,
    "token_used": 409,
    "fingerprint_mismatch": 409,
    "server_not_pending": 409,
    "server_replaced": 409,
    "replacement_limit": 409,
    "capacity_in_use": 409,
    "token_expired": 410,
    "unlock_link_expired": 410,
    "approval_code_expired": 410,
    "subscription_requires_online": 422,
    "version_unsupported": 426,
    "rate_limited": 429,
    "service_unavailable": 503,
    "server_error": 500,
}


class DomainError(Exception):
    """A business rule refused an operation. `code` is one of the contract's error codes; `status`
    the HTTP status it is answered with."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return STATUS_FOR_CODE.get(self.code, 400)


class AccessDenied(DomainError, PermissionDenied):
    """A permission rule refused the actor (``permission_denied``). A domain error for the
    services and the API's problem+json; also Django's ``PermissionDenied``, so a portal view
    that asks an ``access_*`` function is answered with the 403 page without catching it."""

    def __init__(self, detail: str) -> None:
        super().__init__("permission_denied", detail)
