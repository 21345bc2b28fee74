"""The audit trail's single writer. Callers are services, inside their own transaction."""

from typing import Any

from django.db import models

from .actors import Actor
from .models import AuditEvent, SmartAccount


def record_event(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    account: SmartAccount | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
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
