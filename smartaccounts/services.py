"""Partners' API keys and customers: creating and revoking keys, a reseller's new customer."""

from django.db import transaction
from django.utils import timezone

from .access import access_api_keys
from .actors import Actor
from .audit import record_event
from .models import ApiKey, Organization, PartnerLink, SmartAccount
from .secrets import hash_secret, new_secret

API_KEY_PREFIX = "clp_"
API_KEY_VISIBLE_CHARS = 12  # "clp_" and 8 random characters, shown in lists


def create_api_key(*, organization: Organization, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Create a key for `organization`. Returns the row and the raw key, shown once."""
    access_api_keys(actor, organization)
    raw = new_secret(API_KEY_PREFIX)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organization=organization,
            name=name.strip() or "API key",
            prefix=raw[:API_KEY_VISIBLE_CHARS],
            key_hash=hash_secret(raw),
            created_by=actor.user,
        )
        record_event(
            actor=actor,
            action="api_key.created",
            obj=api_key,
            data={"name": api_key.name, "prefix": api_key.prefix},
        )
    return api_key, raw


def revoke_api_key(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    access_api_keys(actor, api_key.organization)
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        api_key.refresh_from_db(fields=["revoked_at"])
        if updated:
            record_event(
                actor=actor, action="api_key.revoked", obj=api_key, data={"prefix": api_key.prefix}
            )
    return api_key


def create_customer(
    *,
    reseller: Organization,
    name: str,
    email: str,
    country: str = "",
    external_id: str = "",
    actor: Actor,
) -> Organization:
    """A new customer organization with its Smart Account, served by `reseller`."""
    with transaction.atomic():
        customer = Organization.objects.create(
            kind=Organization.Kind.CUSTOMER,
            name=name.strip(),
            email=email.strip().lower(),
            country=country.upper(),
        )
        account = SmartAccount.objects.create(organization=customer, name=customer.name)
        PartnerLink.objects.create(reseller=reseller, customer=customer, external_id=external_id)
        record_event(
            actor=actor,
            action="customer.created",
            obj=customer,
            account=account,
            data={"name": customer.name, "reseller": str(reseller.pk)},
        )
    return customer
