import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import transaction
from django.utils import timezone

from notifications.models import OutboundEmail
from notifications.tasks import enqueue_email
from smartaccounts.access import access_write
from smartaccounts.actors import Actor
from smartaccounts.audit import record_event
from smartaccounts.models import (
    License,
    LicenseRenewal,
    Organization,
    PartnerLink,
    Product,
    SmartAccount,
    User,
)
from smartaccounts.secrets import hash_secret, secret_matches
from smartaccounts.services import create_customer, invite_contact, resend_invitation
from smartaccounts.validators import CONTROL_CHARACTERS_MESSAGE, has_control_characters

from .access import access_release_order
from .errors import OrderError
from .models import TERMS_END_BEFORE, Order, OrderLine

ORDER_EMAIL = "order"
LICENSES_AVAILABLE_EMAIL = "licenses_available"


@dataclass(frozen=True)
class CustomerData:
    name: str
    email: str
    external_id: str = ""
    country: str = ""


@dataclass(frozen=True)
class LineData:
    product: str | None = None
    quantity: int | None = None
    kind: str | None = None
    ends_at: datetime | None = None
    care_ends_at: datetime | None = None
    auto_renew: bool | None = None
    renews: uuid.UUID | None = None

    @property
    def is_renewal(self) -> bool:
        return self.renews is not None


@dataclass(frozen=True)
class OrderData:
    reference: str
    customer: CustomerData
    lines: list[LineData] = field(default_factory=list)
    reseller: uuid.UUID | None = None

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class _Errors:
    """Collects field errors so a caller sees every problem of an order at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            first_field, messages = next(iter(self.errors.items()))
            raise OrderError(
                "validation_error", f"{first_field}: {messages[0]}", errors=self.errors
            )


def place_order(
    *, placed_by: Organization | None, data: OrderData, actor: Actor
) -> tuple[Order, bool]:
    """Record an order, its licenses (locked) and renewals, and queue its one e-mail.

    Returns (order, created). Replaying the same reference with the same body returns the
    existing order with created=False; another body under that reference is a conflict.
    """
    # A signed-in user of no organization (vendor staff made on the command line) has none.
    if placed_by is None or not placed_by.is_partner:
        raise OrderError("permission_denied", "Only distributors and resellers place orders.")
    access_write(actor, "Viewers cannot place orders.")
    _validate_header_text(data)
    digest = data.digest()
    now = timezone.now()
    with transaction.atomic():
        # One partner's orders are taken one at a time: this makes the reference check and
        # the customer matching safe under concurrent identical requests.
        Organization.objects.select_for_update().filter(pk=placed_by.pk).first()
        existing = Order.objects.filter(placed_by=placed_by, reference=data.reference).first()
        if existing is not None:
            if existing.request_digest != digest:
                raise OrderError(
                    "idempotency_conflict",
                    f"Order reference {data.reference!r} was already used with another body.",
                    extra={"order_id": str(existing.pk)},
                )
            return existing, False

        reseller = _resolve_reseller(placed_by, data.reseller)
        products = _validate_new_lines(data.lines, now)
        customer = _match_or_create_customer(reseller, data.customer, actor)
        account = customer.smart_account
        renewed = _validate_renewals(data.lines, account, products, now)

        has_new = any(not line.is_renewal for line in data.lines)
        order = Order.objects.create(
            reference=data.reference,
            placed_by=placed_by,
            reseller=reseller,
            customer=customer,
            account=account,
            request_digest=digest,
            state=Order.State.LOCKED if has_new else Order.State.UNLOCKED,
            unlocked_at=None if has_new else now,
        )
        owned_products = set(
            License.objects.filter(account=account)
            .exclude(state=License.State.REVOKED)
            .values_list("product_id", flat=True)
        )
        for position, line in enumerate(data.lines):
            if line.renews is not None:
                _apply_renewal(order, position, line, renewed[line.renews], actor)
            else:
                assert line.product is not None  # checked by _validate_new_lines
                _create_license(
                    order, position, line, products[line.product], owned_products, actor
                )
        record_event(
            actor=actor,
            action="order.received",
            obj=order,
            account=account,
            data={"reference": order.reference, "lines": len(data.lines)},
        )
        enqueue_email(kind=ORDER_EMAIL, object_id=str(order.pk), to=partner_recipients(placed_by))
    return order, True


def partner_recipients(org: Organization) -> list[str]:
    if org.email:
        return [org.email]
    return list(
        User.objects.filter(organization=org, role=User.Role.ADMIN, is_active=True).values_list(
            "email", flat=True
        )
    )


def _resolve_reseller(placed_by: Organization, reseller_id: uuid.UUID | None) -> Organization:
    if placed_by.kind == Organization.Kind.RESELLER:
        if reseller_id is not None and reseller_id != placed_by.pk:
            raise OrderError(
                "validation_error",
                "reseller: a reseller orders for itself; leave this field out.",
                errors={"reseller": ["A reseller orders for itself; leave this field out."]},
            )
        return placed_by
    if reseller_id is None:
        raise OrderError(
            "validation_error",
            "reseller: a distributor names the reseller it orders for.",
            errors={"reseller": ["This field is required for distributors."]},
        )
    reseller = (
        placed_by.resellers.select_for_update()
        .filter(pk=reseller_id, kind=Organization.Kind.RESELLER)
        .first()
    )
    if reseller is None:
        raise OrderError(
            "validation_error",
            "reseller: not one of your resellers.",
            errors={"reseller": ["Not one of your resellers."]},
        )
    return reseller


def _validate_header_text(data: OrderData) -> None:
    """The order's texts that reach e-mail headers (the reference and the customer's name in
    the order e-mail's subject, the address as a recipient) hold no line break or other
    control character (S24): refused before anything is written, never stuck in the outbox."""
    errors = _Errors()
    texts = {
        "reference": data.reference,
        "customer.name": data.customer.name,
        "customer.email": data.customer.email,
        "customer.external_id": data.customer.external_id,
        "customer.country": data.customer.country,
    }
    for name, value in texts.items():
        if has_control_characters(value):
            errors.add(name, CONTROL_CHARACTERS_MESSAGE)
    errors.raise_if_any()


def _validate_dates(errors: _Errors, name: str, line: LineData) -> None:
    for attr in ("ends_at", "care_ends_at"):
        moment = getattr(line, attr)
        if moment is not None and moment >= TERMS_END_BEFORE:
            errors.add(f"{name}.{attr}", f"Must be before {TERMS_END_BEFORE:%Y-%m-%d}.")


def _validate_new_lines(lines: list[LineData], now: datetime) -> dict[str, Product]:
    errors = _Errors()
    if not lines:
        errors.add("lines", "An order needs at least one line.")
    codes = {line.product for line in lines if line.product and not line.is_renewal}
    products = {p.code: p for p in Product.objects.filter(code__in=codes, is_active=True)}
    for index, line in enumerate(lines):
        name = f"lines.{index}"
        _validate_dates(errors, name, line)
        if line.is_renewal:
            for attr in ("quantity", "kind", "auto_renew"):
                if getattr(line, attr) is not None:
                    errors.add(f"{name}.{attr}", "Not allowed on a renewal line.")
            if line.ends_at is None and line.care_ends_at is None:
                errors.add(name, "A renewal line gives ends_at, care_ends_at or both.")
            continue
        if not line.product:
            errors.add(f"{name}.product", "This field is required.")
            continue
        product = products.get(line.product)
        if product is None:
            errors.add(f"{name}.product", f"Unknown product {line.product!r}.")
            continue
        if line.quantity is None:
            errors.add(f"{name}.quantity", "This field is required.")
        if line.kind is None:
            errors.add(f"{name}.kind", "This field is required.")
            continue
        if not product.allows(line.kind):
            errors.add(f"{name}.kind", f"{product.code} is not sold as {line.kind}.")
        if line.kind == License.Kind.SUBSCRIPTION:
            if line.ends_at is None:
                errors.add(f"{name}.ends_at", "A subscription needs its term end.")
            elif line.ends_at <= now:
                errors.add(f"{name}.ends_at", "The term end must be in the future.")
            if line.care_ends_at is not None and line.care_ends_at <= now:
                errors.add(f"{name}.care_ends_at", "The care end must be in the future.")
        else:
            if line.ends_at is not None:
                errors.add(f"{name}.ends_at", "Perpetual licenses have no term end.")
            if line.care_ends_at is not None and line.care_ends_at <= now:
                errors.add(f"{name}.care_ends_at", "The care end must be in the future.")
            if line.auto_renew:
                errors.add(f"{name}.auto_renew", "Only subscriptions renew.")
    errors.raise_if_any()
    return products


def _match_or_create_customer(
    reseller: Organization, data: CustomerData, actor: Actor
) -> Organization:
    """The reseller's customer with this external id, else this e-mail, else a new one.

    Matching looks only among the reseller's own customers: an order never reaches into a
    Smart Account served by someone else.
    """
    links = PartnerLink.objects.filter(reseller=reseller).select_related("customer__smart_account")
    link = None
    if data.external_id:
        link = links.filter(external_id=data.external_id).first()
    if link is None and data.email:
        link = links.filter(customer__email__iexact=data.email).order_by("created_at").first()
        if link is not None and data.external_id and not link.external_id:
            link.external_id = data.external_id
            link.save(update_fields=["external_id"])
    if link is not None:
        return link.customer
    return create_customer(
        reseller=reseller,
        name=data.name,
        email=data.email,
        country=data.country,
        external_id=data.external_id,
        actor=actor,
    )


def _validate_renewals(
    lines: list[LineData], account: SmartAccount, products: dict[str, Product], now: datetime
) -> dict[uuid.UUID, License]:
    ids = [line.renews for line in lines if line.renews is not None]
    if not ids:
        return {}
    licenses = {
        lic.pk: lic
        for lic in License.objects.select_for_update()
        .select_related("product")
        .filter(pk__in=ids, account=account)
    }
    errors = _Errors()
    seen: set[uuid.UUID] = set()
    locked: list[str] = []
    for index, line in enumerate(lines):
        if line.renews is None:
            continue
        name = f"lines.{index}"
        lic = licenses.get(line.renews)
        if lic is None:
            errors.add(f"{name}.renews", "No such license in the customer's Smart Account.")
            continue
        if line.renews in seen:
            errors.add(f"{name}.renews", "This license is renewed twice in one order.")
        seen.add(line.renews)
        if line.product and line.product != lic.product.code:
            errors.add(f"{name}.product", f"The license renewed is {lic.product.code}.")
        if lic.state == License.State.REVOKED:
            errors.add(f"{name}.renews", "A revoked license cannot be renewed.")
        if lic.state == License.State.LOCKED:
            locked.append(str(lic.pk))
        # A date equal to the current one is accepted and changes nothing: the partner's
        # system renewing a period that already renewed itself counts as that renewal.
        if line.ends_at is not None:
            if lic.kind == License.Kind.PERPETUAL:
                errors.add(f"{name}.ends_at", "Perpetual licenses have no term end.")
            elif line.ends_at <= now or (lic.ends_at and line.ends_at < lic.ends_at):
                errors.add(f"{name}.ends_at", "The new term end must be later than the current.")
        if line.care_ends_at is not None and (
            line.care_ends_at <= now or (lic.care_ends_at and line.care_ends_at < lic.care_ends_at)
        ):
            errors.add(f"{name}.care_ends_at", "The new care end must be later than the current.")
    errors.raise_if_any()
    if locked:
        raise OrderError(
            "order_locked",
            "A license to renew belongs to an order that is still locked: unlock it first.",
            extra={"licenses": locked},
        )
    return licenses


def _create_license(
    order: Order, position: int, line: LineData, product: Product, owned: set[int], actor: Actor
) -> License:
    # _validate_new_lines refused a new line without a kind or quantity.
    assert line.kind is not None and line.quantity is not None
    is_subscription = line.kind == License.Kind.SUBSCRIPTION
    care_ends_at = line.care_ends_at
    if is_subscription and care_ends_at is None:
        care_ends_at = line.ends_at  # care comes with a subscription for its whole term
    auto_renew = is_subscription and (line.auto_renew is None or line.auto_renew)
    lic = License.objects.create(
        account=order.account,
        product=product,
        kind=line.kind,
        quantity=line.quantity,
        state=License.State.LOCKED,
        ends_at=line.ends_at if is_subscription else None,
        care_ends_at=care_ends_at,
        auto_renew=auto_renew,
        source=order.reference,
    )
    action = OrderLine.Action.EXPANSION if product.pk in owned else OrderLine.Action.NEW
    OrderLine.objects.create(
        order=order,
        position=position,
        action=action,
        product=product,
        license=lic,
        kind=lic.kind,
        quantity=lic.quantity,
        ends_at=lic.ends_at,
        care_ends_at=lic.care_ends_at,
        auto_renew=auto_renew,
    )
    owned.add(product.pk)
    record_event(
        actor=actor,
        action="license.expanded" if action == OrderLine.Action.EXPANSION else "license.created",
        obj=lic,
        account=order.account,
        data={"order": order.reference, "product": product.code, "quantity": lic.quantity},
    )
    return lic


def _apply_renewal(
    order: Order, position: int, line: LineData, lic: License, actor: Actor
) -> License:
    previous_ends_at, previous_care_ends_at = lic.ends_at, lic.care_ends_at
    if line.ends_at is not None and previous_ends_at and line.ends_at > previous_ends_at:
        # This order is the renewal of the current period: the automatic renewal will find
        # the period renewed and leave it alone.
        LicenseRenewal.objects.get_or_create(
            license=lic,
            period_ends_at=previous_ends_at,
            defaults={"new_ends_at": line.ends_at, "source": LicenseRenewal.Source.ORDER},
        )
    if line.ends_at is not None:
        lic.ends_at = line.ends_at
    if line.care_ends_at is not None:
        lic.care_ends_at = line.care_ends_at
    if (
        lic.kind == License.Kind.SUBSCRIPTION
        and lic.ends_at
        and (lic.care_ends_at is None or lic.care_ends_at < lic.ends_at)
    ):
        lic.care_ends_at = lic.ends_at  # care comes with a subscription for its whole term
    if lic.state == License.State.EXPIRED and (lic.ends_at is None or lic.ends_at > timezone.now()):
        lic.state = License.State.ACTIVE
    lic.save(update_fields=["ends_at", "care_ends_at", "state"])
    OrderLine.objects.create(
        order=order,
        position=position,
        action=OrderLine.Action.RENEWAL,
        product=lic.product,
        license=lic,
        kind=lic.kind,
        ends_at=line.ends_at,
        care_ends_at=line.care_ends_at,
        auto_renew=lic.auto_renew,
        previous_ends_at=previous_ends_at,
        previous_care_ends_at=previous_care_ends_at,
    )
    record_event(
        actor=actor,
        action="license.renewed",
        obj=lic,
        account=lic.account,
        data={
            "order": order.reference,
            "ends_at": lic.ends_at.isoformat() if lic.ends_at else None,
            "care_ends_at": lic.care_ends_at.isoformat() if lic.care_ends_at else None,
        },
    )
    return lic


def unlock_order(*, order: Order, actor: Actor) -> tuple[Order, bool]:
    """Unlock every license of the order. Returns (order, changed); a second call is harmless.

    Only the order's holder may (`Order.may_release`); anyone else gets not_found, as if the
    order did not exist, and nothing changes.
    """
    access_release_order(actor, order)
    return _release(order, actor)


def unlock_order_with_link(*, secret: str, actor: Actor) -> tuple[Order, bool]:
    """Unlock the order whose e-mail link carries `secret`: the link is the placing
    organization's capability for this one order (S8), so it stands in for the holder check.
    A link past its lifetime (S28) raises unlock_link_expired and changes nothing."""
    order = find_order_by_unlock_secret(secret)
    if order is None:
        raise OrderError("not_found", "This unlock link is not valid.")
    return _release(order, actor, link_secret=secret)


def _release(order: Order, actor: Actor, *, link_secret: str | None = None) -> tuple[Order, bool]:
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update()
            .select_related("placed_by", "reseller", "customer", "account")
            .get(pk=order.pk)
        )
        now = timezone.now()
        if link_secret is not None:
            if not secret_matches(link_secret, locked.unlock_secret_hash):
                # A new e-mail retired this link while the request was on its way.
                raise OrderError("not_found", "This unlock link is not valid.")
            if locked.unlock_link_expired(now):
                raise OrderError(
                    "unlock_link_expired",
                    "This unlock link has expired: re-send the order e-mail from the portal's "
                    "Orders page for a new one.",
                )
        if not locked.is_locked:
            return locked, False
        License.objects.filter(order_lines__order=locked, state=License.State.LOCKED).update(
            state=License.State.ACTIVE, starts_at=now
        )
        locked.state = Order.State.UNLOCKED
        locked.unlocked_at = now
        locked.unlocked_by = actor.label[:200]
        locked.save(update_fields=["state", "unlocked_at", "unlocked_by"])
        record_event(
            actor=actor,
            action="order.unlocked",
            obj=locked,
            account=locked.account,
            data={"reference": locked.reference},
        )
        _tell_customer(locked, actor)
    return locked, True


def find_order_by_unlock_secret(secret: str) -> Order | None:
    if not secret:
        return None
    order = (
        Order.objects.select_related("placed_by", "reseller", "customer", "account")
        .filter(unlock_secret_hash=hash_secret(secret))
        .first()
    )
    if order is None or not secret_matches(secret, order.unlock_secret_hash):
        return None
    return order


def resend_order_email(*, order: Order, actor: Actor) -> Order:
    """Send the order e-mail again with a new link; the previous link stops working now.

    Only the order's holder may (`Order.may_release`); anyone else gets not_found.
    """
    access_release_order(actor, order)
    with transaction.atomic():
        locked = Order.objects.select_for_update().select_related("placed_by").get(pk=order.pk)
        if not locked.is_locked:
            raise OrderError("validation_error", "This order is already unlocked.")
        locked.unlock_secret_hash = ""
        locked.unlock_link_issued_at = None
        locked.save(update_fields=["unlock_secret_hash", "unlock_link_issued_at"])
        # An earlier e-mail still waiting (or whose sender died mid-way) is closed: only the
        # new one's link may work.
        OutboundEmail.objects.filter(
            kind=ORDER_EMAIL, object_id=str(locked.pk), sent_at__isnull=True
        ).update(sent_at=timezone.now(), last_error="Replaced by a re-sent e-mail.")
        enqueue_email(
            kind=ORDER_EMAIL, object_id=str(locked.pk), to=partner_recipients(locked.placed_by)
        )
        record_event(
            actor=actor,
            action="order.email_resent",
            obj=locked,
            account=locked.account,
            data={"reference": locked.reference},
        )
    return locked


def set_unlock_secret(*, order: Order, secret: str, issued_at: datetime) -> None:
    """Bind the unlock secret of an order e-mail to the order (called while sending it).

    `issued_at` is the e-mail's own date, so the link's lifetime counts from the message and a
    repeated delivery of the same e-mail carries the same link with the same end. Sets both on
    `order` too, for the message to say until when the link works.
    """
    secret_hash = hash_secret(secret)
    Order.objects.filter(pk=order.pk).update(
        unlock_secret_hash=secret_hash, unlock_link_issued_at=issued_at
    )
    order.unlock_secret_hash = secret_hash
    order.unlock_link_issued_at = issued_at


def customer_recipients(customer: Organization) -> list[str]:
    """Who hears that licenses arrived: the customer's admins who can log in, or, when it has
    no such admin, everyone of it who can. Empty for a first-time contact."""
    users = (
        User.objects.filter(organization=customer, is_active=True)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .order_by("email")
        .values_list("email", "role")
    )
    admins = [email for email, role in users if role == User.Role.ADMIN]
    return admins or [email for email, _ in users]


def _tell_customer(order: Order, actor: Actor) -> None:
    """One e-mail per unlock: the licenses are in the Smart Account. A customer nobody of
    which can log in yet gets the invitation instead (it says the licenses are waiting)."""
    recipients = customer_recipients(order.customer)
    if recipients:
        enqueue_email(kind=LICENSES_AVAILABLE_EMAIL, object_id=str(order.pk), to=recipients)
    else:
        _invite_first_customer_user(order, actor)


def _invite_first_customer_user(order: Order, actor: Actor) -> None:
    customer = order.customer
    pending = list(customer.users.filter(is_active=True))
    if pending:
        # Invited by an earlier order but not signed up yet: invite them again.
        for user in pending:
            resend_invitation(user=user, actor=actor, licenses_from=order.reseller)
        return
    if customer.users.exists() or not customer.email:
        return
    invite_contact(
        organization=customer, email=customer.email, actor=actor, licenses_from=order.reseller
    )
