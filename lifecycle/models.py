import uuid

from django.db import models
from django.utils import timezone

from smartaccounts.models import License, Organization


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
    """That a partner was told about something once: a term crossing a threshold, an expiry,
    a server going stale, an order locked too long. Nothing is reported twice."""

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


class ExpiryNoticeLine(models.Model):
    """One term or care end a customer was told about at one threshold: told once, ever."""

    class What(models.TextChoices):
        TERM = "term", "Subscription term"
        CARE = "care", "Care"

    notice = models.ForeignKey(ExpiryNotice, on_delete=models.CASCADE, related_name="lines")
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="+")
    what = models.CharField(max_length=8, choices=What.choices)
    ends_at = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    days_left = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["ends_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "what", "ends_at", "threshold"], name="expiry_notice_line_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.what} of {self.license_id} ends {self.ends_at:%Y-%m-%d} ({self.threshold}d)"
