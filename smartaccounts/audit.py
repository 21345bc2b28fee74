"""The audit trail's single writer. Callers are services, inside their own transaction."""

import uuid
from typing import Any

from django.db import models

from .actors import Actor
from .models import AuditEvent, SmartAccount


def new_event(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    account: SmartAccount | None = None,
    account_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """An unsaved event, for services that write many at once (`record_events`)."""
    event = AuditEvent(
        action=action,
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=actor.label[:200],
        organization=actor.organization,
        account=account,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        address=actor.address,
        data=data or {},
    )
    if account is None and account_id is not None:
        event.account_id = account_id
    return event


def record_event(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    account: SmartAccount | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    event = new_event(actor=actor, action=action, obj=obj, account=account, data=data)
    event.save(force_insert=True)
    return event


def record_events(events: list[AuditEvent]) -> None:
    """Write a batch of events in one statement (a daily job's batch of changes)."""
    AuditEvent.objects.bulk_create(events)
