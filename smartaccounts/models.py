import uuid
from datetime import datetime, timedelta
from typing import ClassVar

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

CARE_EXPIRING_WITHIN = timedelta(days=60)


class Organization(models.Model):
    class Kind(models.TextChoices):
        VENDOR = "vendor", "Vendor"
        DISTRIBUTOR = "distributor", "Distributor"
        RESELLER = "reseller", "Reseller"
        CUSTOMER = "customer", "Customer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    # The contact that receives order e-mails (partners) or invitations (customers).
    email = models.EmailField(blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    # Distributors serve resellers; a reseller may buy through more than one distributor.
    resellers = models.ManyToManyField(
        "self",
        symmetrical=False,
        related_name="distributors",
        blank=True,
        limit_choices_to={"kind": "reseller"},
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["kind", "name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_partner(self) -> bool:
        return self.kind in (self.Kind.DISTRIBUTOR, self.Kind.RESELLER)


class PartnerLink(models.Model):
    """A reseller serves a customer. Created by the reseller's first order for that customer."""

    reseller = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="customer_links"
    )
    customer = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="reseller_links"
    )
    # The reseller's own id for this customer (its CRM or ordering system's key).
    external_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reseller", "customer"], name="partnerlink_unique"),
            models.UniqueConstraint(
                fields=["reseller", "external_id"],
                condition=~Q(external_id=""),
                name="partnerlink_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reseller} → {self.customer}"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        if not email:
            raise ValueError("Users need an e-mail address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("role", User.Role.ADMIN)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the back office.")
    # Customers' users hear when their care or subscription is about to end; each may opt out.
    expiry_reminders = models.BooleanField(
        default=True, help_text="E-mail me when our care or a subscription is about to end."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def can_write(self) -> bool:
        return self.role in (self.Role.ADMIN, self.Role.MEMBER)

    def is_org_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class SmartAccount(models.Model):
    """The customer's container of licenses and servers: one per customer organization."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="smart_account"
    )
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [
            # The customer picker seeks through a partner's accounts by name: walked in this
            # order, a page reads its rows and stops, whatever the number of customers.
            models.Index(fields=["name", "id"], name="smartaccount_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    code = models.CharField(max_length=64, unique=True, help_text="e.g. CALL_RECORDING")
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=32, help_text="Capacity unit: users, channels, seats…")
    allows_perpetual = models.BooleanField(default=True)
    allows_subscription = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def allows(self, kind: str) -> bool:
        if kind == License.Kind.PERPETUAL:
            return self.allows_perpetual
        if kind == License.Kind.SUBSCRIPTION:
            return self.allows_subscription
        return False


def care_status_at(care_ends_at: datetime | None, now: datetime) -> str:
    if care_ends_at is None or care_ends_at <= now:
        return License.CareStatus.EXPIRED
    if care_ends_at - now <= CARE_EXPIRING_WITHIN:
        return License.CareStatus.EXPIRING
    return License.CareStatus.ACTIVE


class License(models.Model):
    """An entitlement: capacity of one product in one Smart Account."""

    class Kind(models.TextChoices):
        PERPETUAL = "perpetual", "Perpetual"
        SUBSCRIPTION = "subscription", "Subscription"

    class State(models.TextChoices):
        LOCKED = "locked", "Locked"
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    class CareStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRING = "expiring", "Expiring"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(SmartAccount, on_delete=models.PROTECT, related_name="licenses")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="licenses")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    quantity = models.PositiveIntegerField()
    # Capacity of this license given to servers; kept by the assignment service under a row
    # lock and bounded by the database as a second line of defence.
    assigned = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LOCKED)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Subscription term end.")
    care_ends_at = models.DateTimeField(null=True, blank=True)
    auto_renew = models.BooleanField(default=True, help_text="Subscriptions only.")
    renewal_months = models.PositiveSmallIntegerField(
        default=12, help_text="Term added by each automatic renewal."
    )
    source = models.CharField(
        max_length=100, blank=True, help_text="Where it came from: the order reference, or how."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["product__name", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(assigned__lte=models.F("quantity")),
                name="license_assigned_within_quantity",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="license_quantity_positive"),
            models.CheckConstraint(
                condition=Q(kind="perpetual", ends_at__isnull=True)
                | Q(kind="subscription", ends_at__isnull=False),
                name="license_term_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "product", "state"]),
            # The daily jobs (due to renew or expire) and the digests and renewals dashboard
            # (terms or care ending within 90 days).
            models.Index(fields=["state", "ends_at"], name="license_state_ends_idx"),
            models.Index(fields=["state", "care_ends_at"], name="license_state_care_ends_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product.code} ({self.kind}, {self.state})"

    def care_status(self, now: datetime) -> str:
        return care_status_at(self.care_ends_at, now)


class LicenseRenewal(models.Model):
    """One renewal of one license for one term: the automatic one, or a partner's renewal line.

    Unique per license and period, so a renewal job run twice (or racing a renewal order)
    extends a term once.
    """

    class Source(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        ORDER = "order", "Renewal order"

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="renewals")
    period_ends_at = models.DateTimeField(help_text="The term end this renewal continues.")
    new_ends_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "period_ends_at"], name="renewal_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.license_id} renewed to {self.new_ends_at:%Y-%m-%d} ({self.source})"


class ApiKey(models.Model):
    """A partner system's credential. Only a keyed hash of the secret is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written by services, never edited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor_user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Who, as shown to people.")
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        help_text="The acting organization.",
    )
    account = models.ForeignKey(
        SmartAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        help_text="The Smart Account concerned, if any.",
    )
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # An account's history, newest first (its pages' order: -created_at, -id), and
            # filtered by action; audit events are kept for years, so no page may scan them.
            models.Index(fields=["account", "created_at", "id"], name="audit_account_time_idx"),
            models.Index(
                fields=["account", "action", "created_at"], name="audit_account_action_idx"
            ),
            # An organization's own events, recorded with no account (the invitations into a
            # partner, read by its Team page), by action.
            models.Index(
                fields=["organization", "action", "created_at"],
                condition=Q(account__isnull=True),
                name="audit_org_action_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} by {self.actor_label}"
