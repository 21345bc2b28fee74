import uuid

from django.db import models
from django.utils import timezone

from smartaccounts.models import Organization


class Digest(models.Model):
    """The daily e-mail to one partner: what needs its attention, built once per day."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="digests")
    day = models.DateField()
    content = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["partner", "day"], name="digest_once_a_day")]
        # Pruning: digests older than DIGEST_RETENTION.
        indexes = [models.Index(fields=["day"], name="digest_day_idx")]

    def __str__(self) -> str:
        return f"Digest for {self.partner} on {self.day}"


class Reminder(models.Model):
    """That a partner was told of a server's over-use at what it holds (the few flagged
    servers): told again only once that changes. Ends, renewals, expiries, stale servers and
    locked orders are told once through the partner's `ToldThrough` rows instead."""

    partner = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    subject_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=32)
    marker = models.CharField(max_length=64)
    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="reminders")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "subject_id", "reason", "marker"], name="reminder_once"
            )
        ]
        # Pruning: reminders of ends long past (the marker starts with the day it ended).
        indexes = [models.Index(fields=["reason", "marker"], name="reminder_reason_marker_idx")]

    def __str__(self) -> str:
        return f"{self.reason} {self.subject_id} ({self.marker})"


class ExpiryNotice(models.Model):
    """A customer's reminder e-mail for one day: its care or subscription terms ending soon."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="expiry_notices"
    )
    day = models.DateField()
    # What the e-mail lists (the most urgent ends, each license's id, what ends, when, days
    # left and threshold) and how many more it counts: bounded whatever the customer's size.
    content = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "day"], name="expiry_notice_once_a_day")
        ]
        # Pruning: reminder e-mails older than REMINDER_RETENTION.
        indexes = [models.Index(fields=["day"], name="expiry_notice_day_idx")]

    def __str__(self) -> str:
        return f"Expiry reminder for {self.customer} on {self.day}"


class ToldThrough(models.Model):
    """How far an organization has been told of ends at one threshold: one row per partner's
    digest (or customer's reminders) and threshold, instead of one row per item told.

    A run at `told_at` tells every end then within `threshold` days and sets `through` to
    `told_at` + `threshold` days. An end at or before `through` was told at this threshold, unless
    its license changed after `told_at` (added, renewed or unlocked since): then it is told
    again at its current threshold. Threshold 0 is the partner's other news (renewals, expiries,
    stale servers, locked orders): told up to `told_at`.
    """

    class Topic(models.TextChoices):
        DIGEST = "digest", "Partner's digest"
        REMINDER = "reminder", "Customer's expiry reminders"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    topic = models.CharField(max_length=16, choices=Topic.choices)
    threshold = models.PositiveSmallIntegerField()
    through = models.DateTimeField()
    told_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "topic", "threshold"], name="told_through_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} of {self.organization_id} at {self.threshold}d: {self.through}"


class RenewalRequest(models.Model):
    """A customer asked its partner to renew a license ending soon: once per license and
    term (the end it asked about), so asking again changes and sends nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    license = models.ForeignKey(
        "smartaccounts.License", on_delete=models.CASCADE, related_name="renewal_requests"
    )
    # The end (term, or care) the customer asked about: a renewal moves it, so the next term
    # may be asked about again.
    period_ends_at = models.DateTimeField()
    partner = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        "smartaccounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "period_ends_at"], name="renewal_request_once_per_term"
            )
        ]

    def __str__(self) -> str:
        return f"Renewal of {self.license_id} asked for the end {self.period_ends_at:%Y-%m-%d}"
