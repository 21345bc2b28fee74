import uuid

from django.db import models
from django.utils import timezone


class OutboundEmail(models.Model):
    """One e-mail to send, written in the same transaction as the business change.

    The message is rendered by the renderer registered for `kind` when the row is first sent,
    so secrets that go into links are minted then; what was rendered is kept encrypted
    (`sealed`) and sent again as it is by any later delivery.

    A row is *pending* until it is sent, closed (nothing to send any more, or replaced by a
    re-send) or given up on (*failed*: every attempt failed for OUTBOX_GIVE_UP_HOURS). While
    pending, a failed attempt schedules the next one at `next_attempt_at` (exponential backoff
    with jitter, capped at OUTBOX_RETRY_MAX_SECONDS).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Could not be delivered"
        CLOSED = "closed", "Closed without sending"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, db_index=True)
    object_id = models.CharField(max_length=64)
    to = models.JSONField(default=list, help_text="Recipient addresses.")
    # Facts the message states that the object itself does not hold (who invited, and why).
    # Never a secret: links carrying secrets are minted at send time.
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # When the row left (sent), or was closed; empty while pending and once given up on.
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the sweep may try the row next: its creation (the sweep waits OUTBOX_SWEEP_AFTER
    # more for a new row, whose queued task sends it first), then after each failed attempt.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    failed_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    # The message as first rendered (subject, bodies, recipients), encrypted under a key
    # derived from OUTBOX_LINK_KEY since it may hold an unlock link: every delivery sends it.
    sealed = models.TextField(blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A sender claims the row before sending, outside any transaction: until claimed_until no
    # other sender takes it; a claim whose sender died runs out and the row is taken again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbound e-mail"
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True),
                name="outbox_unsent_idx",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
                name="outbox_due_idx",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(state="failed"),
                name="outbox_failed_idx",
            ),
            models.Index(fields=["object_id", "kind"], name="outbox_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.to)}"
