"""Who is acting: a portal user, a partner system's API key, a server, or the system itself;
and who is behind a request (`actor_for`, from the caller's `client_address`)."""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty
from django_htmx.middleware import HtmxDetails

from .models import ApiKey, Organization, User


class PortalRequest(HttpRequest):
    """A request to a portal or back-office page past `login_required` (or the admin's staff
    check), so its user is signed in; HtmxMiddleware has run on every request."""

    user: User
    htmx: HtmxDetails


@dataclass(frozen=True)
class Actor:
    label: str
    organization: Organization | None = None
    user: User | None = None
    api_key: ApiKey | None = None
    address: str | None = None
    is_system: bool = False

    @classmethod
    def for_user(cls, user: User, address: str | None = None) -> "Actor":
        return cls(label=user.email, organization=user.organization, user=user, address=address)

    @classmethod
    def for_api_key(cls, api_key: ApiKey, address: str | None = None) -> "Actor":
        return cls(
            label=f"API key {api_key.prefix}… ({api_key.name})",
            organization=api_key.organization,
            api_key=api_key,
            address=address,
        )

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(label=label, is_system=True)

    @classmethod
    def anonymous(cls, label: str, address: str | None = None) -> "Actor":
        """Someone holding a capability link (an unlock e-mail), not logged in."""
        return cls(label=label, address=address)

    @property
    def role(self) -> str:
        if self.user is not None:
            if self.user.is_superuser:
                return User.Role.ADMIN
            return self.user.role
        # A partner system acts with member rights: it may order and unlock, not manage people.
        if self.api_key is not None:
            return User.Role.MEMBER
        if self.is_system:
            return User.Role.ADMIN
        return User.Role.VIEWER

    @property
    def can_write(self) -> bool:
        return self.role in (User.Role.ADMIN, User.Role.MEMBER)

    @property
    def is_org_admin(self) -> bool:
        return self.user is not None and self.role == User.Role.ADMIN


def client_address(request: HttpRequest) -> str | None:
    """The caller's address; behind TRUSTED_PROXY_COUNT proxies, from X-Forwarded-For."""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        header: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [p.strip() for p in header.split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    address: str | None = request.META.get("REMOTE_ADDR") or None
    return address


def actor_for(request: Any) -> Actor:
    address = client_address(request)
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return Actor.for_api_key(auth, address)
    return Actor.for_user(request.user, address)


def organization_logged(request: HttpRequest) -> str | None:
    """The organization a request acted for, for its log line (REQUEST_LOG_ORGANIZATION):
    the API key's, or the logged-in user's when the request already loaded them. Never a
    query of its own."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return str(auth.organization_id)
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:  # type: ignore[attr-defined]
        return None  # nobody asked who is logged in: not worth a query
    organization_id = getattr(user, "organization_id", None)
    return str(organization_id) if organization_id else None
