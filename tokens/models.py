import uuid
from collections.abc import Mapping
from datetime import datetime

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from smartaccounts.actors import Actor
from smartaccounts.models import License, SmartAccount
from smartaccounts.selectors import accounts_for

from .limits import FINGERPRINT_MAX, HOSTNAME_MAX, SERVER_NAME_MAX, VERSION_MAX


class ServerQuerySet(models.QuerySet["Server"]):
    def visible_to(self, actor: Actor) -> "ServerQuerySet":
        return self.filter(account__in=accounts_for(actor))


class Server(models.Model):
    """An AppSuite instance of a Smart Account."""

    class Purpose(models.TextChoices):
        PRODUCTION = "production", "Production"
        TEST = "test", "Test"
        REDUNDANCY = "redundancy", "Redundancy"
        OTHER = "other", "Other"

    class State(models.TextChoices):
        PENDING = "pending", "Pending activation"
        ACTIVE = "active", "Active (online)"
        OFFLINE = "offline", "Activated offline"
        STALE = "stale", "Stale"
        DEACTIVATED = "deactivated", "Deactivated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(SmartAccount, on_delete=models.PROTECT, related_name="servers")
    name = models.CharField(max_length=SERVER_NAME_MAX)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.PRODUCTION)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    fingerprint = models.CharField(max_length=FINGERPRINT_MAX, blank=True)
    hostname = models.CharField(max_length=HOSTNAME_MAX, blank=True)
    reported_version = models.CharField(max_length=VERSION_MAX, blank=True)
    # What the server last said it uses, per product code: {"CALL_RECORDING": 12}.
    reported_usage = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    first_sync_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Set when a sync arrives from another fingerprint: the VM may have been copied.
    clone_suspected_at = models.DateTimeField(null=True, blank=True)
    # Whether the server uses more of a product than it holds: set by each sync that changes
    # the answer and by each change of its capacity, so views across all of a partner's
    # servers read the flagged few (see over_use for the rule).
    overused = models.BooleanField(default=False, editable=False)
    # An offline server keeps the last license file issued for it, so the same request file
    # gets the same file back.
    offline_document = models.TextField(blank=True, editable=False)
    offline_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ServerQuerySet.as_manager()

    class Meta:
        ordering = ["name", "created_at"]
        indexes = [
            models.Index(fields=["account", "state"]),
            # The daily job's stale candidates: online and silent since a cutoff.
            models.Index(fields=["state", "last_sync_at"], name="server_state_last_sync_idx"),
            # The partner's dashboard and digest: the few servers using more than they hold,
            # and those that need attention (stale, or possibly copied), by last sync.
            models.Index(
                fields=["account"], condition=Q(overused=True), name="server_overused_idx"
            ),
            models.Index(
                fields=["last_sync_at"],
                condition=Q(state="stale") | Q(clone_suspected_at__isnull=False),
                name="server_attention_idx",
            ),
            # Servers of an account bound to one machine (possible clones: the server page,
            # the Overview and the partner's digest look them up by account and fingerprint).
            models.Index(
                fields=["account", "fingerprint"],
                condition=~Q(fingerprint=""),
                name="server_machine_idx",
            ),
        ]
        constraints = [
            # People tell servers apart by name: one name per Smart Account, in any case,
            # among servers in use (a deactivated server's name is free again).
            models.UniqueConstraint(
                Lower("name"),
                F("account"),
                condition=~Q(state="deactivated"),
                name="server_name_unique_in_account",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_pending(self) -> bool:
        return self.state == self.State.PENDING

    @property
    def is_deactivated(self) -> bool:
        return self.state == self.State.DEACTIVATED

    def over_use(self, held: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """{product code: (used, held)} for each product the server last reported using more
        of than it holds. `held` is what it holds per product code (on active licenses)."""
        return over_use(self.state, self.reported_usage, held)


def over_use(
    state: str, usage: Mapping[str, object] | None, held: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """The rule behind Server.over_use, for a server in `state` reporting `usage`. Pending and
    deactivated servers report nothing that counts."""
    if state in (Server.State.PENDING, Server.State.DEACTIVATED):
        return {}
    over = {}
    for code, used in (usage or {}).items():
        if isinstance(used, int) and used > held.get(code, 0):
            over[code] = (used, held.get(code, 0))
    return over


class Assignment(models.Model):
    """Capacity of one license held by one server."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="assignments")
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="assignments")
    quantity = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["server", "license"]
        constraints = [
            models.UniqueConstraint(fields=["server", "license"], name="assignment_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="assignment_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.server} holds {self.quantity} of {self.license_id}"


class UsageDay(models.Model):
    """The most a server reported using of each application on one UTC day, among the reports
    recorded that day (a steady server records none: its last recorded use goes on). Kept
    USAGE_HISTORY_DAYS for the server page's chart."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    peaks = models.JSONField(default=dict)

    class Meta:
        ordering = ["server", "day"]
        constraints = [models.UniqueConstraint(fields=["server", "day"], name="usage_day_unique")]
        indexes = [models.Index(fields=["day"], name="usage_day_day_idx")]

    def __str__(self) -> str:
        return f"{self.server_id} on {self.day}"


class ActivationToken(models.Model):
    """A single-use secret that lets one pending server activate. Only its hash is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token for {self.server} ({self.status(timezone.now())})"

    def status(self, now: datetime) -> str:
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "valid"

    def is_usable(self, now: datetime) -> bool:
        return self.status(now) == "valid"


class ServerCredential(models.Model):
    """The secret a server authenticates its syncs with, issued at activation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="credentials")
    credential_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"credential of {self.server} ({'revoked' if self.revoked_at else 'active'})"


class SigningKey(models.Model):
    """An Ed25519 key that signs license documents. The private half is stored encrypted."""

    kid = models.CharField(max_length=64, unique=True)
    public_key = models.CharField(max_length=64, help_text="Raw public key, base64url.")
    private_key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    # Published from its creation, it signs only from signs_from: a rotated key is announced
    # longer than /api/v1/keys may be cached before any document carries its kid.
    signs_from = models.DateTimeField(null=True, blank=True)
    # Retired keys stay published while documents they signed may still be within their lease.
    retired_at = models.DateTimeField(null=True, blank=True)
    # The vendor root's endorsement of this key (tokens/trust.py); agents trust no key without.
    endorsement = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.kid
