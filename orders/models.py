import uuid
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.models import License, Organization, Product, SmartAccount

# Terms and care in an order end before this moment: a later date is a typo (or a probe), and
# no license document, agent or spreadsheet should have to carry it (SECURITY.md S24).
TERMS_END_BEFORE = datetime(2101, 1, 1, tzinfo=UTC)


def visibility(actor: Actor) -> tuple[Q, ...]:
    """What makes an order visible to the actor, any one of these: its organization placed it,
    or it was placed for it as reseller. None for anyone else (no order is visible)."""
    org = actor.organization
    if org is None or not org.is_partner:
        return ()
    return (Q(placed_by=org), Q(reseller=org))


class OrderQuerySet(models.QuerySet["Order"]):
    def visible_to(self, actor: Actor) -> "OrderQuerySet":
        """Orders the actor's organization placed, or that were placed for it as reseller."""
        conditions = visibility(actor)
        if not conditions:
            return self.none()
        return self.filter(reduce(or_, conditions))


class Order(models.Model):
    class State(models.TextChoices):
        LOCKED = "locked", "Locked"
        UNLOCKED = "unlocked", "Unlocked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=100)
    placed_by = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="orders_placed"
    )
    reseller = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="orders_as_reseller"
    )
    customer = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="orders_as_customer"
    )
    account = models.ForeignKey(SmartAccount, on_delete=models.PROTECT, related_name="orders")
    state = models.CharField(max_length=16, choices=State.choices, default=State.LOCKED)
    # SHA-256 of the canonical request, to tell a replay from a conflicting reuse of reference.
    request_digest = models.CharField(max_length=64, editable=False)
    # Keyed hash of the secret in the current unlock link; empty until the e-mail is sent.
    unlock_secret_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    # When the current unlock link was issued (the date of the e-mail carrying it): the link
    # works for UNLOCK_LINK_TTL_DAYS from then. Empty while there is no link.
    unlock_link_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.CharField(max_length=200, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["placed_by", "reference"], name="order_reference_unique_per_partner"
            )
        ]
        indexes = [
            # A partner's orders, newest first: those it placed and those placed for it.
            models.Index(fields=["placed_by", "created_at", "id"], name="order_placed_by_time_idx"),
            models.Index(fields=["reseller", "created_at", "id"], name="order_reseller_time_idx"),
            # Orders still locked (few, whatever the number of orders): dashboards and digests.
            models.Index(fields=["state", "created_at"], name="order_state_time_idx"),
        ]

    def __str__(self) -> str:
        return f"Order {self.reference}"

    @property
    def is_locked(self) -> bool:
        return self.state == self.State.LOCKED

    @property
    def unlock_link_expires_at(self) -> datetime | None:
        """When the current unlock link stops working (SECURITY.md S28); None without a link."""
        if self.unlock_link_issued_at is None:
            return None
        return self.unlock_link_issued_at + timedelta(days=settings.UNLOCK_LINK_TTL_DAYS)

    def unlock_link_expired(self, now: datetime) -> bool:
        """Whether the current unlock link is past its lifetime. A link without an issue date
        counts as expired: every link minted since lifetimes exist has one."""
        expires_at = self.unlock_link_expires_at
        return expires_at is None or now >= expires_at

    def may_release(self, actor: Actor) -> bool:
        """Whether `actor` may unlock this order or re-send its e-mail (SECURITY.md S29).

        Only the holder releases: the organization that placed the order, or vendor staff. A
        reseller sees the order its distributor placed for it, but the distributor holds the
        licenses until the reseller pays. (The e-mail's unlock link is a capability of the
        placing organization and is checked by its secret instead.)
        """
        if actor.is_system:
            return True
        if actor.user is not None and actor.user.is_active and actor.user.is_staff:
            return True
        return actor.organization is not None and actor.organization.pk == self.placed_by_id


class OrderLine(models.Model):
    class Action(models.TextChoices):
        NEW = "new", "New"
        EXPANSION = "expansion", "Expansion"
        RENEWAL = "renewal", "Renewal"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    # The license created (new, expansion) or extended (renewal) by this line.
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="order_lines")
    kind = models.CharField(max_length=16, choices=License.Kind.choices)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    care_ends_at = models.DateTimeField(null=True, blank=True)
    auto_renew = models.BooleanField(default=True)
    # For renewals: the dates they replaced, so the history reads plainly.
    previous_ends_at = models.DateTimeField(null=True, blank=True)
    previous_care_ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="orderline_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.order.reference} #{self.position + 1}: {self.action} {self.product.code}"
