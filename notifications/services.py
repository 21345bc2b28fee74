"""The outbox: every outbound message is a row written with the change that causes it
(`tasks.enqueue_email`), then sent by `deliver_email` (run by the `send_email` task) in three
steps, none of which holds a transaction across the send:

1. **claim** — a conditional UPDATE marks the row as being sent by this sender until a lease
   ends, and commits. Two senders given the same row: one claim wins, the other backs off.
2. **send** — render and hand the message to the backend, outside any transaction. The first
   render is kept on the row, encrypted (`seal`), and every delivery sends that, whatever
   became of its object since. Its ``Message-ID`` and ``Date`` come from the row, and every
   secret in its links is derived from the row's id under ``OUTBOX_LINK_KEY`` (`link_secret`),
   with its hash committed before the send. Sending the row again gives the same message.
3. **record** — mark it sent (only under this sender's claim) and run what the renderer asked
   to happen once it left (an audit event).

A sender that dies between 2 and 3 leaves the claim to run out; the row is then sent again,
identical, so mail systems fold the copy. At most one send per row in normal operation, at
least once under faults.

A send that fails (the mail server is down or refuses) releases the claim and schedules the
next attempt on the row itself (`next_attempt_at`: exponential backoff with jitter, capped at
OUTBOX_RETRY_MAX), where the sweep finds it; the row alone counts attempts. Only once every
attempt has failed for OUTBOX_GIVE_UP (72 hours) is the row given up on: it becomes *failed*,
which the metrics count and the order's page shows, with its Re-send.
"""

import base64
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import OutboundEmail
from .renderers import render

logger = logging.getLogger(__name__)

PENDING = OutboundEmail.State.PENDING


class ClaimedElsewhere(Exception):
    """Another sender holds the row; try again once its claim may have run out."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"claimed by another sender for {retry_in:.0f} s more")
        self.retry_in = retry_in


def record_email(
    *, kind: str, object_id: str, to: list[str], context: dict[str, Any] | None = None
) -> OutboundEmail:
    """The outbox row of one e-mail, written in the caller's transaction. `tasks.enqueue_email`
    writes it and hands it to a worker once that transaction commits.

    `context` holds facts for the message that its object does not keep (who invited someone,
    and why); it is stored as it is, so it never holds a secret.
    """
    now = timezone.now()
    return OutboundEmail.objects.create(
        kind=kind,
        object_id=str(object_id),
        to=to,
        context=context or {},
        created_at=now,
        next_attempt_at=now,
    )


def record_emails(emails: list[tuple[str, str, list[str]]]) -> list[OutboundEmail]:
    """The outbox rows of many e-mails, (kind, object id, recipients) each, written in the
    caller's transaction in one INSERT (a daily job's batch). The caller hands them to a worker
    once that commits (`tasks.send_email`); the sweep sends any it could not."""
    now = timezone.now()
    return OutboundEmail.objects.bulk_create(
        [
            OutboundEmail(
                kind=kind,
                object_id=str(object_id),
                to=to,
                context={},
                created_at=now,
                next_attempt_at=now,
            )
            for kind, object_id, to in emails
        ]
    )


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling from
    OUTBOX_RETRY_BASE up to OUTBOX_RETRY_MAX, drawn between half of that and all of it."""
    base = settings.OUTBOX_RETRY_BASE.total_seconds()
    ceiling = settings.OUTBOX_RETRY_MAX.total_seconds()
    delay = min(ceiling, base * 2 ** min(max(attempts - 1, 0), 30))
    return timedelta(seconds=random.uniform(delay / 2, delay))


# --- what makes a repeated delivery the same message ------------------------------------


def link_secret(row: OutboundEmail, purpose: str) -> str:
    """A secret for a link in this row's message (256 bits): the same on every delivery of the
    row, different for every row and purpose, never stored (only its hash is)."""
    key = settings.OUTBOX_LINK_KEY.encode()
    digest = hmac.new(key, f"{row.pk}:{purpose}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _TokensAt(PasswordResetTokenGenerator):
    """Django's password-reset tokens as of one moment, so the same row yields the same token."""

    def __init__(self, moment: datetime) -> None:
        super().__init__()
        self._moment = moment

    def _now(self) -> datetime:  # the hook Django's own tests use to pin the clock
        return timezone.make_naive(self._moment, timezone.get_default_timezone())


def token_generator_for(row: OutboundEmail) -> PasswordResetTokenGenerator:
    """Reset and invitation tokens for this row's message, as of the row's creation."""
    return _TokensAt(row.created_at)


def message_id(row: OutboundEmail) -> str:
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<{row.pk}@{domain}>"


def _stamp(message: EmailMessage, row: OutboundEmail) -> None:
    """Makes the message the same bytes on every delivery: Message-ID, Date and the MIME
    boundaries (random by default) come from the row. The subject is put on one line: a name
    with a line break in it never breaks the header, nor sticks the row in the outbox."""
    message.subject = " ".join(str(message.subject).split())
    message.extra_headers["Message-ID"] = message_id(row)
    message.extra_headers["Date"] = format_datetime(row.created_at)
    build = message.message

    def stable() -> Any:
        mime = build()
        for number, part in enumerate(p for p in mime.walk() if p.is_multipart()):
            part.set_boundary(f"=_{row.pk.hex}_{number}")
        return mime

    message.message = stable  # type: ignore[method-assign]


# --- the message as first rendered, kept sealed on the row ---------------------------------


def _sealing_key() -> Fernet:
    """Fernet key for the stored messages, derived from OUTBOX_LINK_KEY (the messages hold the
    links made under it), apart from the link secrets themselves."""
    digest = hmac.new(
        settings.OUTBOX_LINK_KEY.encode(), b"outbox-sealed-message", hashlib.sha256
    ).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(message: EmailMultiAlternatives) -> str:
    """The message as rendered (subject, bodies, sender, recipients, headers), encrypted: it
    may hold an unlock link, whose secret is never stored in clear."""
    content = {
        "subject": str(message.subject),
        "body": str(message.body),
        "alternatives": [[str(content), mimetype] for content, mimetype in message.alternatives],
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": {str(k): str(v) for k, v in message.extra_headers.items()},
    }
    return _sealing_key().encrypt(json.dumps(content).encode()).decode()


def unseal(sealed: str) -> EmailMultiAlternatives:
    content = json.loads(_sealing_key().decrypt(sealed.encode()))
    message = EmailMultiAlternatives(
        subject=content["subject"],
        body=content["body"],
        from_email=content["from_email"],
        to=content["to"],
        cc=content["cc"],
        bcc=content["bcc"],
        reply_to=content["reply_to"],
        headers=content["headers"],
    )
    for alternative, mimetype in content["alternatives"]:
        message.attach_alternative(alternative, mimetype)
    return message


def _message_for(row: OutboundEmail, claim: uuid.UUID) -> EmailMultiAlternatives | None:
    """The message to send for the claimed row, or None when there is nothing to send any more.

    The first render is sealed on the row and every delivery, the first included, sends what
    was sealed: a redelivered row is the same message even when its object changed after the
    first render. The renderer still runs on every attempt, for whether there is anything to
    send and for what is recorded once the message has left (`after_sent`).

    Rendering runs under the row's lock, and only while the row is still this sender's and
    pending: what the renderer commits for the message (an unlock link's hash) can never
    overwrite what a re-send, which closes the row under the same lock, has put in its place.
    Raises Superseded when the row was closed or taken over since it was claimed.
    """
    with transaction.atomic():
        if _current(row, claim) is None:
            raise Superseded(row.pk)
        fresh = render(row)
        if fresh is None:
            return None
        if row.sealed:
            try:
                message = unseal(row.sealed)
            except InvalidToken:  # OUTBOX_LINK_KEY changed: its links changed with it
                logger.warning("Outbox row %s: its sealed message is unreadable", row.pk)
            else:
                message.after_sent = getattr(fresh, "after_sent", None)  # type: ignore[attr-defined]
                return message
        sealed = seal(fresh)
        OutboundEmail.objects.filter(pk=row.pk).update(sealed=sealed)
        row.sealed = sealed
    message = unseal(sealed)
    message.after_sent = getattr(fresh, "after_sent", None)  # type: ignore[attr-defined]
    return message


class Superseded(Exception):
    """The claimed row was closed (its e-mail re-sent) or taken over since it was claimed:
    this sender sends and records nothing."""


def _current(row: OutboundEmail, claim: uuid.UUID) -> OutboundEmail | None:
    """The row, locked until the caller's transaction ends, if it is still pending under this
    sender's claim. A re-send closes the row under the same lock, so the two are ordered."""
    return (
        OutboundEmail.objects.select_for_update()
        .filter(pk=row.pk, claim=claim, state=PENDING)
        .only("pk")
        .first()
    )


# --- claim, send, record --------------------------------------------------------------------


def _claim(row_id: str, now: datetime) -> tuple[OutboundEmail, uuid.UUID] | None:
    claim = uuid.uuid4()
    taken = OutboundEmail.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        pk=row_id,
        state=PENDING,
    ).update(
        claim=claim,
        claimed_until=now + settings.OUTBOX_CLAIM_LEASE,
        attempts=F("attempts") + 1,
    )
    if taken:
        return OutboundEmail.objects.get(pk=row_id), claim
    held = OutboundEmail.objects.filter(pk=row_id, state=PENDING).first()
    if held is not None and held.claimed_until is not None:
        raise ClaimedElsewhere((held.claimed_until - now).total_seconds())
    return None  # sent already, closed, given up on, or gone


def _failed_attempt(
    row: OutboundEmail, claim: uuid.UUID, error: BaseException, now: datetime
) -> None:
    """The send failed: free the row and schedule its next attempt, or give it up once its
    attempts have failed for OUTBOX_GIVE_UP."""
    mine = OutboundEmail.objects.filter(pk=row.pk, claim=claim, state=PENDING)
    last_error = f"{type(error).__name__}: {error}"[:2000]
    if now >= row.created_at + settings.OUTBOX_GIVE_UP:
        if mine.update(
            state=OutboundEmail.State.FAILED,
            failed_at=now,
            claimed_until=None,
            last_error=last_error,
        ):
            logger.error(
                "Outbox row %s (%s) given up on after %d attempts: %s",
                row.pk,
                row.kind,
                row.attempts,
                last_error,
            )
        return
    mine.update(
        claimed_until=None,
        next_attempt_at=now + retry_delay(row.attempts),
        last_error=last_error,
    )


def deliver_email(*, row_id: str, now: datetime | None = None) -> bool:
    """Send one outbox row unless it was sent already. True when this call sent it.

    Raises ClaimedElsewhere while another sender's claim holds the row, and the send's own
    error when the message could not be handed over (the row then waits for its next attempt,
    or is given up on).
    """
    clock = _clock_from(now)
    claimed = _claim(row_id, clock())
    if claimed is None:
        return False
    row, claim = claimed
    try:
        message = _message_for(row, claim)
        if message is not None:
            _stamp(message, row)
            message.send(fail_silently=False)
    except Superseded:
        return False
    except Exception as exc:
        _failed_attempt(row, claim, exc, clock())
        raise
    with transaction.atomic():
        if _current(row, claim) is None:
            return False  # closed meanwhile (re-sent): nothing of this send is recorded
        recorded = OutboundEmail.objects.filter(pk=row.pk, claim=claim, state=PENDING)
        if message is None:
            recorded.update(
                state=OutboundEmail.State.CLOSED,
                sent_at=timezone.now(),
                last_error="Nothing to send any more.",
                claimed_until=None,
            )
            return False
        recorded.update(
            state=OutboundEmail.State.SENT,
            subject=message.subject[:255],
            sent_at=timezone.now(),
            last_error="",
            claimed_until=None,
        )
        after_sent = getattr(message, "after_sent", None)
        if after_sent is not None:
            after_sent()
    return True


def seconds_until_due(*, row_id: str) -> float | None:
    """How long until the row may be tried again (its next attempt, or its current claim's
    end, whichever is later); None when it is no longer pending."""
    row = (
        OutboundEmail.objects.filter(pk=row_id, state=PENDING)
        .only("next_attempt_at", "claimed_until")
        .first()
    )
    if row is None:
        return None
    due = max(row.next_attempt_at, row.claimed_until or row.next_attempt_at)
    return max((due - timezone.now()).total_seconds(), 0.0)


def sweep_outbox(*, now: datetime | None = None) -> int:
    """Send rows whose task never ran (broker down at commit, worker lost), whose sender's
    claim ran out, or whose next attempt after a failed one is due. Returns how many it sent.

    Each row is claimed at the time it is taken (not the sweep's start), so its claim outlives
    its own send however long the sweep has run; and a sweep takes at most
    OUTBOX_SWEEP_MAX_ROWS rows and starts none after OUTBOX_SWEEP_MAX_SECONDS, leaving the rest
    to the next one. `now` (tests) sets the clock at the start; it runs on from there.
    """
    clock = _clock_from(now)
    started = clock()
    deadline = started + settings.OUTBOX_SWEEP_MAX_SECONDS
    due = (
        OutboundEmail.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=started),
            state=PENDING,
            next_attempt_at__lte=started,
            # The task queued at commit sends a new row; the sweep only if it has not by then.
            created_at__lte=started - settings.OUTBOX_SWEEP_AFTER,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)
    )
    sent = 0
    for row_id in list(due[: settings.OUTBOX_SWEEP_MAX_ROWS]):
        current = clock()
        if current >= deadline:
            logger.info("Outbox sweep stopped at its time limit; the next sweep goes on")
            break
        try:
            if deliver_email(row_id=str(row_id), now=current):
                sent += 1
        except ClaimedElsewhere:
            continue
        except Exception:
            logger.exception("Outbox row %s failed to send; it will be retried", row_id)
    return sent


def _clock_from(now: datetime | None) -> Callable[[], datetime]:
    """The current time; or, given `now`, a clock set to it that runs on in real time."""
    if now is None:
        return timezone.now
    offset = now - timezone.now()
    return lambda: timezone.now() + offset
