from datetime import timedelta

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from licensing_portal.identifiers import uuid_or_404

from .actors import Actor
from .models import ApiKey, Organization
from .secrets import hash_secret, secret_matches

# last_used_at is informative: refreshing it at most this often keeps requests read-only.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=5)


def api_keys_for(actor: Actor) -> QuerySet[ApiKey]:
    if actor.organization is None:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(organization=actor.organization).select_related("created_by")


def get_api_key_for(actor: Actor, key_id: object) -> ApiKey:
    return get_object_or_404(api_keys_for(actor), pk=uuid_or_404(key_id))


def authenticate_api_key(raw: str) -> ApiKey | None:
    """The active key matching `raw`, or None. Compared in constant time."""
    digest = hash_secret(raw)
    api_key = (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not secret_matches(raw, api_key.key_hash):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def resellers_of(distributor: Organization) -> QuerySet[Organization]:
    return distributor.resellers.filter(kind=Organization.Kind.RESELLER).order_by("name")
