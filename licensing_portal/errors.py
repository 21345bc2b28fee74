"""The base of every app's domain exception. Services raise these; front doors translate them."""

from typing import Any


class DomainError(Exception):
    """A business rule refused an operation. `code` is one of API.md's error codes."""

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
