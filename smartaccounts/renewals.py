"""License terms: renewals of subscriptions, expiry, auto-renew and evaluations; one license at a
time or the daily jobs' batches."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, QuerySet, When
from django.utils import timezone

from kernel.batches import Raced, in_locked_batches

from .access import access_auto_renew
from .actors import Actor
from .audit import new_event, record_event, record_events
from .errors import AccountError
from .models import (
    License,
    LicenseRenewal,
    Product,
    SmartAccount,
)
from .terms import add_months

RENEWAL_GRACE = timedelta(days=7)
# How far ahead a term or care end counts as "ending soon": the partners' renewals dashboard,
# and when a customer may ask its partner to renew.
RENEWAL_HORIZON = timedelta(days=90)


def renew_subscription(
    *, license_id: uuid.UUID | str, now: datetime, actor: Actor
) -> LicenseRenewal | None:
    """Extend one subscription by its renewal term if it reached its end and renews itself.

    Returns the renewal, or None when there was nothing to do (not due, renewal off, or this
    period renewed already — by another run of the job or by a renewal order).
    """
    with transaction.atomic():
        lic = (
            _due_for_renewal(now)
            .select_for_update()
            .select_related("account")
            .filter(pk=license_id)
            .first()
        )
        if lic is None:
            return None
        period = lic.ends_at
        assert period is not None  # selected by ends_at__lte
        new_end = add_months(period, lic.renewal_months)
        try:
            with transaction.atomic():
                renewal = LicenseRenewal.objects.create(
                    license=lic,
                    period_ends_at=period,
                    new_ends_at=new_end,
                    source=LicenseRenewal.Source.AUTOMATIC,
                    created_at=now,
                )
        except IntegrityError:
            return None
        lic.ends_at = new_end
        # Care comes with a subscription: it runs at least as long as the term.
        if lic.care_ends_at is None or lic.care_ends_at < new_end:
            lic.care_ends_at = new_end
        lic.state = License.State.ACTIVE
        lic.save(update_fields=["ends_at", "care_ends_at", "state"])
        record_event(
            actor=actor,
            action="license.renewed",
            obj=lic,
            account=lic.account,
            data={
                "source": "automatic",
                "from": period.isoformat(),
                "ends_at": new_end.isoformat(),
            },
        )
    return renewal


def expire_license(*, license_id: uuid.UUID | str, now: datetime, actor: Actor) -> bool:
    """Mark an active subscription whose term has ended as expired. True if it changed."""
    with transaction.atomic():
        changed = License.objects.filter(
            pk=license_id, state=License.State.ACTIVE, ends_at__lte=now
        ).update(state=License.State.EXPIRED)
        if changed:
            lic = License.objects.select_related("account").get(pk=license_id)
            assert lic.ends_at is not None  # updated by ends_at__lte, in this transaction
            record_event(
                actor=actor,
                action="license.expired",
                obj=lic,
                account=lic.account,
                data={"product": lic.product_id, "ended_at": lic.ends_at.isoformat()},
            )
    return bool(changed)


def _due_for_renewal(now: datetime) -> QuerySet[License]:
    return License.objects.filter(
        kind=License.Kind.SUBSCRIPTION,
        auto_renew=True,
        state__in=[License.State.ACTIVE, License.State.EXPIRED],
        ends_at__lte=now,
        # Catch up on days the job did not run, but never revive a long-lapsed term.
        ends_at__gt=now - RENEWAL_GRACE,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def renew_due_subscriptions(*, now: datetime, actor: Actor) -> int:
    """The daily job's renewals, `DAILY_JOBS_BATCH_SIZE` licenses per transaction: what
    `renew_subscription` does to one, in a few statements per batch. Returns how many renewed."""

    def renew(batch: list[License]) -> int:
        told = set(
            LicenseRenewal.objects.filter(
                license__in=batch, period_ends_at__gt=now - RENEWAL_GRACE
            ).values_list("license_id", "period_ends_at")
        )
        # A period renewed already (by a renewal order) is left alone, as renew_subscription does.
        due: list[License] = []
        renewals: list[LicenseRenewal] = []
        for lic in batch:
            if lic.ends_at is None or (lic.pk, lic.ends_at) in told:
                continue  # due licenses have an end (the batch filters on it)
            due.append(lic)
            renewals.append(
                LicenseRenewal(
                    license=lic,
                    period_ends_at=lic.ends_at,
                    new_ends_at=add_months(lic.ends_at, lic.renewal_months),
                    source=LicenseRenewal.Source.AUTOMATIC,
                    created_at=now,
                )
            )
        try:
            with transaction.atomic():
                # Unique per license and period: a run that got here first makes this fail.
                LicenseRenewal.objects.bulk_create(renewals)
        except IntegrityError:
            return sum(
                renew_subscription(license_id=lic.pk, now=now, actor=actor) is not None
                for lic in batch
            )
        events = []
        for lic, renewal in zip(due, renewals, strict=True):
            period, new_end = renewal.period_ends_at, renewal.new_ends_at
            lic.ends_at = new_end
            events.append(
                new_event(
                    actor=actor,
                    action="license.renewed",
                    obj=lic,
                    account_id=lic.account_id,
                    data={
                        "source": "automatic",
                        "from": period.isoformat(),
                        "ends_at": new_end.isoformat(),
                    },
                )
            )
        # Each its own new end; then, in one statement, care runs at least as long as the term
        # (it comes with a subscription) and the license is active again.
        License.objects.bulk_update(due, ["ends_at"])
        License.objects.filter(pk__in=[lic.pk for lic in due]).update(
            state=License.State.ACTIVE,
            care_ends_at=Case(
                When(
                    Q(care_ends_at__isnull=True) | Q(care_ends_at__lt=F("ends_at")),
                    then=F("ends_at"),
                ),
                default=F("care_ends_at"),
            ),
        )
        record_events(events)
        return len(due)

    due = _due_for_renewal(now).only(
        "pk", "account_id", "ends_at", "care_ends_at", "renewal_months", "state"
    )
    return in_locked_batches(due, settings.DAILY_JOBS_BATCH_SIZE, renew)


def expire_due_licenses(
    *,
    now: datetime,
    actor: Actor,
    then: Callable[[list[uuid.UUID]], None] | None = None,
) -> int:
    """The daily job's expiry, `DAILY_JOBS_BATCH_SIZE` licenses per transaction: one
    conditional UPDATE and one insert of their events per batch. Returns how many expired.

    `then` is called with each batch's licenses, in its transaction, once they expired (the
    daily jobs refresh the over-use flag of the servers holding them)."""

    def expire(batch: list[License]) -> int:
        changed = _expire(batch)
        if then is not None and changed:
            then([lic.pk for lic in batch])
        return changed

    def _expire(batch: list[License]) -> int:
        try:
            with transaction.atomic():
                changed = License.objects.filter(
                    pk__in=[lic.pk for lic in batch], state=License.State.ACTIVE, ends_at__lte=now
                ).update(state=License.State.EXPIRED)
                if changed != len(batch):
                    raise Raced
                record_events(
                    [
                        new_event(
                            actor=actor,
                            action="license.expired",
                            obj=lic,
                            account_id=lic.account_id,
                            data={"product": lic.product_id, "ended_at": _iso(lic.ends_at)},
                        )
                        for lic in batch
                    ]
                )
        except Raced:
            return sum(expire_license(license_id=lic.pk, now=now, actor=actor) for lic in batch)
        return changed

    due = License.objects.filter(state=License.State.ACTIVE, ends_at__lte=now).only(
        "pk", "account_id", "product_id", "ends_at"
    )
    return in_locked_batches(due, settings.DAILY_JOBS_BATCH_SIZE, expire)


def set_auto_renew(*, license: License, enabled: bool, actor: Actor) -> License:
    """A partner turns automatic renewal of a subscription on or off."""
    access_auto_renew(actor)
    if license.kind != License.Kind.SUBSCRIPTION:
        raise AccountError("validation_error", "Only subscriptions renew automatically.")
    with transaction.atomic():
        License.objects.filter(pk=license.pk).update(auto_renew=enabled)
        license.auto_renew = enabled
        record_event(
            actor=actor,
            action="license.auto_renew_changed",
            obj=license,
            account=license.account,
            data={"auto_renew": enabled},
        )
    return license


def issue_evaluation(
    *, account: SmartAccount, product: Product, quantity: int, actor: Actor, days: int = 30
) -> License:
    """A time-limited evaluation: a subscription that expires on its own."""
    if quantity < 1:
        raise AccountError("validation_error", "quantity: at least 1.")
    if not product.allows_subscription:
        raise AccountError(
            "validation_error", f"{product.code} is not sold as a subscription, nor evaluated."
        )
    now = timezone.now()
    end = now + timedelta(days=days)
    with transaction.atomic():
        lic = License.objects.create(
            account=account,
            product=product,
            kind=License.Kind.SUBSCRIPTION,
            quantity=quantity,
            state=License.State.ACTIVE,
            starts_at=now,
            ends_at=end,
            care_ends_at=end,
            auto_renew=False,
            source="evaluation",
        )
        record_event(
            actor=actor,
            action="license.evaluation_issued",
            obj=lic,
            account=account,
            data={"product": product.code, "quantity": quantity, "ends_at": end.isoformat()},
        )
    return lic
