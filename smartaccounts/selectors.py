import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Count, F, Min, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce, RowNumber
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from kernel.identifiers import uuid_or_404

from .access import access_api_keys, access_org_admin
from .actors import Actor
from .models import (
    ApiKey,
    AuditEvent,
    License,
    Organization,
    PartnerLink,
    Product,
    SmartAccount,
    User,
    care_status_at,
)
from .secrets import hash_secret, secret_matches

# last_used_at is informative: refreshing it at most this often keeps requests read-only.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=5)


def api_keys_for(actor: Actor) -> QuerySet[ApiKey]:
    if actor.organization is None:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(organization=actor.organization).select_related("created_by")


def get_api_key_for(actor: Actor, key_id: object) -> ApiKey:
    return get_object_or_404(api_keys_for(actor), pk=uuid_or_404(key_id))


def get_rw_api_key_for(actor: Actor, key_id: object) -> ApiKey:
    """A key of the actor's organization that the actor may revoke: 403 for anyone but its
    admins, then 404 for an id not in it."""
    access_api_keys(actor, actor.organization)
    return get_api_key_for(actor, key_id)


def authenticate_api_key(raw: str) -> ApiKey | None:
    """The active key matching `raw`, or None. Compared in constant time."""
    digest = hash_secret(raw)
    api_key = (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=digest, revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not secret_matches(raw, api_key.key_hash):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def resellers_of(distributor: Organization) -> QuerySet[Organization]:
    return distributor.resellers.filter(kind=Organization.Kind.RESELLER).order_by("name")


# --- Smart Accounts -------------------------------------------------------------------------


def accounts_for(actor: Actor) -> QuerySet[SmartAccount]:
    """The Smart Accounts the actor's organization may see.

    A customer sees its own; a reseller the customers it serves; a distributor the customers of
    its resellers (read only). Anyone else sees none.
    """
    org = actor.organization
    if org is None:
        return SmartAccount.objects.none()
    if org.kind == Organization.Kind.CUSTOMER:
        return SmartAccount.objects.filter(organization=org)
    if org.kind == Organization.Kind.RESELLER:
        return SmartAccount.objects.filter(
            organization__in=PartnerLink.objects.filter(reseller=org).values("customer")
        )
    if org.kind == Organization.Kind.DISTRIBUTOR:
        return SmartAccount.objects.filter(
            organization__in=PartnerLink.objects.filter(
                reseller__in=org.resellers.values("pk")
            ).values("customer")
        )
    return SmartAccount.objects.none()


def resellers_of_distributor(actor: Actor) -> list[Organization]:
    """The resellers a distributor serves, by name (none for anyone else): the customer
    list's reseller filter and column."""
    org = actor.organization
    if org is None or org.kind != Organization.Kind.DISTRIBUTOR:
        return []
    return list(org.resellers.order_by("name", "pk"))


def filter_by_reseller(
    accounts: QuerySet[SmartAccount], resellers: list[Organization], reseller_id: str
) -> tuple[QuerySet[SmartAccount], Organization | None]:
    """The accounts served by the one of `resellers` that `reseller_id` names, and that
    reseller; an id that names none of them filters nothing."""
    chosen = next((r for r in resellers if str(r.pk) == reseller_id), None)
    if chosen is None:
        return accounts, None
    return accounts.filter(organization__reseller_links__reseller=chosen), chosen


def with_resellers(
    accounts: list[SmartAccount], resellers: list[Organization]
) -> list[SmartAccount]:
    """Sets `account.resellers` (names, among `resellers`) on each of one page's accounts: one
    query over these accounts only."""
    names = {r.pk: r.name for r in resellers}
    serving: dict[uuid.UUID, list[str]] = {}
    links = PartnerLink.objects.filter(
        customer_id__in=[a.organization_id for a in accounts], reseller_id__in=list(names)
    ).values_list("customer_id", "reseller_id")
    for customer_id, reseller_id in links:
        serving.setdefault(customer_id, []).append(names[reseller_id])
    for account in accounts:
        account.resellers = sorted(serving.get(account.organization_id, []))  # type: ignore[attr-defined]  # shown only
    return accounts


def get_account_for(actor: Actor, account_id: object) -> SmartAccount:
    return get_object_or_404(
        accounts_for(actor).select_related("organization"), pk=uuid_or_404(account_id)
    )


@dataclass
class PoolRow:
    """One application of an account: its capacities and the care status to show."""

    product: Product
    total: int
    assigned: int
    locked: int
    care_ends_at: datetime | None
    care_status: str
    # The nearest subscription term end among active licenses (None: perpetual only).
    ends_at: datetime | None = None
    licenses: list[License] = field(default_factory=list)

    @property
    def available(self) -> int:
        return self.total - self.assigned


def license_pool(account: SmartAccount, now: datetime) -> list[PoolRow]:
    """One row per application, in two queries whatever the number of licenses.

    Totals count only active licenses; locked capacity (orders not yet unlocked) is apart.
    The care badge follows the earliest care end among active licenses, so a partner sees
    what is about to lapse.
    """
    active = Q(state=License.State.ACTIVE)
    totals = (
        License.objects.filter(account=account)
        .exclude(state=License.State.REVOKED)
        .values("product")
        .annotate(
            total=Coalesce(Sum("quantity", filter=active), 0),
            assigned=Coalesce(Sum("assigned", filter=active), 0),
            locked=Coalesce(Sum("quantity", filter=Q(state=License.State.LOCKED)), 0),
            care_min=Min("care_ends_at", filter=active),
            ends_min=Min("ends_at", filter=active),
            without_care=Count("pk", filter=active & Q(care_ends_at__isnull=True)),
        )
    )
    rows = list(totals)
    products = Product.objects.in_bulk([row["product"] for row in rows])
    pool = []
    for row in rows:
        care_ends_at = None if row["without_care"] else row["care_min"]
        has_active = row["total"] > 0
        pool.append(
            PoolRow(
                product=products[row["product"]],
                total=row["total"],
                assigned=row["assigned"],
                locked=row["locked"],
                care_ends_at=care_ends_at,
                care_status=care_status_at(care_ends_at, now) if has_active else "",
                ends_at=row["ends_min"],
            )
        )
    pool.sort(key=lambda r: r.product.name)
    return pool


# The sortable columns of the licenses page; True: the first click sorts descending.
POOL_SORTS = {"name": False, "available": True, "care": False}
# Care status from the most urgent: what a partner has to act on comes first.
_CARE_URGENCY = {
    License.CareStatus.EXPIRED: 0,
    License.CareStatus.EXPIRING: 1,
    License.CareStatus.ACTIVE: 2,
    "": 3,  # nothing active yet (only locked capacity)
}
_NEVER = datetime.max.replace(tzinfo=UTC)


def arrange_pool(rows: list[PoolRow], *, sort: str, care: str = "") -> list[PoolRow]:
    """The pool rows with care status `care` (all if empty), ordered by `sort` (a key of
    POOL_SORTS, "-" for descending). Rows per account are few (one per application): this
    runs in memory on what license_pool read."""
    if care:
        rows = [row for row in rows if row.care_status == care]
    column = sort.removeprefix("-")
    keys = {
        "name": lambda r: (r.product.name.casefold(),),
        "available": lambda r: (r.available, r.product.name.casefold()),
        "care": lambda r: (
            _CARE_URGENCY.get(r.care_status, 3),
            r.care_ends_at or _NEVER,
            r.product.name.casefold(),
        ),
    }
    return sorted(rows, key=keys.get(column, keys["name"]), reverse=sort.startswith("-"))


def partners_of(customer: Organization) -> list[Organization]:
    """The resellers serving a customer organization, as its users see them."""
    return list(Organization.objects.filter(customer_links__customer=customer).order_by("name"))


def licenses_for_export(account: SmartAccount) -> QuerySet[License]:
    """Every license of the account, one row each, for the CSV export."""
    return (
        License.objects.filter(account=account)
        .select_related("product")
        .order_by("product__name", "created_at", "pk")
    )


def licenses_by_product(account: SmartAccount, product_ids: list[int]) -> dict[int, list[License]]:
    """The licenses behind pool rows, for the rows shown (one query)."""
    grouped: dict[int, list[License]] = {pid: [] for pid in product_ids}
    licenses = (
        License.objects.filter(account=account, product_id__in=product_ids)
        .exclude(state=License.State.REVOKED)
        .order_by("product_id", "state", "-created_at")
    )
    for lic in licenses:
        grouped[lic.product_id].append(lic)
    return grouped


def licenses_of_row(account: SmartAccount, product_id: int) -> QuerySet[License]:
    """The licenses behind one pool row (not revoked), to seek through in LICENSE_ROW_ORDER."""
    return License.objects.filter(account=account, product_id=product_id).exclude(
        state=License.State.REVOKED
    )


# How a row's licenses are listed: by state, newest first, the pk breaking ties.
LICENSE_ROW_ORDER = ("state", "-created_at", "pk")


def first_licenses_by_product(
    account: SmartAccount, product_ids: list[int], limit: int
) -> dict[int, tuple[list[License], int]]:
    """For each row shown, its first `limit` licenses and how many it has in all (one query,
    which sends no more than `limit` licenses a row whatever the account holds)."""
    grouped: dict[int, tuple[list[License], int]] = {pid: ([], 0) for pid in product_ids}
    ordered = [
        F(name.removeprefix("-")).desc() if name.startswith("-") else F(name).asc()
        for name in LICENSE_ROW_ORDER
    ]
    licenses = (
        License.objects.filter(account=account, product_id__in=product_ids)
        .exclude(state=License.State.REVOKED)
        .annotate(
            place=Window(RowNumber(), partition_by=[F("product_id")], order_by=ordered),
            in_row=Window(Count("pk"), partition_by=[F("product_id")]),
        )
        .filter(place__lte=limit)
        .order_by("product_id", "place")
    )
    for lic in licenses:
        listed, _ = grouped[lic.product_id]
        listed.append(lic)
        grouped[lic.product_id] = (listed, lic.in_row)
    return grouped


def users_for(actor: Actor) -> QuerySet[User]:
    if actor.organization is None:
        return User.objects.none()
    return User.objects.filter(organization=actor.organization).order_by("-is_active", "email")


# --- Team: members and the invitations sent --------------------------------------------------

INVITED = "user.invited"
INVITATION_CANCELLED = "user.invitation_cancelled"
# Someone has joined once they chose a password (or logged in some other way); before that
# they are an invitation, listed like one to an address with an account elsewhere (S27).
SIGNED_UP = ~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX) | Q(last_login__isnull=False)


def has_signed_up(user: User) -> bool:
    """SIGNED_UP, for one user at hand."""
    return user.has_usable_password() or user.last_login is not None


def members_for(actor: Actor) -> QuerySet[User]:
    """The people of the actor's organization who have signed up."""
    return users_for(actor).filter(SIGNED_UP)


def get_member_for(actor: Actor, user_id: object) -> User:
    """A member, for the role and deactivate tools: a pending invitee's id is as unknown
    here as the id of someone in another organization."""
    return get_object_or_404(members_for(actor), pk=uuid_or_404(user_id))


def get_rw_member_for(actor: Actor, user_id: object) -> User:
    """A member whose role or access the actor may change: 403 for anyone but an admin of
    the organization, then 404 as `get_member_for`."""
    access_org_admin(actor, actor.organization)
    return get_member_for(actor, user_id)


@dataclass(frozen=True)
class Invitation:
    """The latest invitation of one address that nobody has taken up or cancelled."""

    id: uuid.UUID  # of that latest invitation event: what the re-send and cancel buttons name
    email: str
    role: str
    sent_at: datetime
    sent_by: str
    # Whole days since it was sent, as of the listing.
    waiting_days: int = 0

    @property
    def role_label(self) -> str:
        return User.Role(self.role).label if self.role in User.Role.values else self.role

    @property
    def overdue(self) -> bool:
        """Waiting long enough that the admin is told why it may never be taken up."""
        return self.waiting_days >= INVITATION_OVERDUE_DAYS


# An invitation not taken up after this many days is flagged on the Team page, with the reasons
# it may never be (alike for every address: S27).
INVITATION_OVERDUE_DAYS = 7


def invitations_for(actor: Actor) -> list[Invitation]:
    """The invitations into the actor's organization still waiting, newest first.

    Read from the invitation events, never from User rows, so that an address with an account
    in another organization (nobody joins, nothing is created) is listed exactly like a new one
    (S27). An invitation into a customer is recorded with its Smart Account (a partner's order
    may invite the customer's first person); into a partner, with the partner and no account.
    Three queries at most, whatever the number of invitations or of other tenants' events.
    """
    organization = actor.organization
    if organization is None:
        return []
    # Each half on an index of its own: the account's events by action
    # (audit_account_action_idx), the organization's own by action (audit_org_action_idx). A
    # join to the account's organization instead made PostgreSQL read every tenant's
    # invitations and keep this organization's.
    actions = [INVITED, INVITATION_CANCELLED]
    recorded = Q(organization=organization, account__isnull=True, action__in=actions)
    # The account's id itself (a subquery PostgreSQL would test row by row, not seek).
    account = SmartAccount.objects.filter(organization=organization).values("pk").first()
    if account is not None:
        recorded |= Q(account=account["pk"], action__in=actions)
    events = (
        AuditEvent.objects.filter(recorded)
        .select_related("actor_user", "organization")
        .order_by("-created_at", "-pk")
    )
    latest: dict[str, AuditEvent] = {}
    for event in events:
        email = str((event.data or {}).get("email", "")).lower()
        if email and email not in latest:
            latest[email] = event
    waiting = {email: event for email, event in latest.items() if event.action == INVITED}
    joined = set(
        User.objects.filter(organization=organization, email__in=list(waiting))
        .filter(SIGNED_UP)
        .values_list("email", flat=True)
    )
    now = timezone.now()
    return [
        Invitation(
            id=event.pk,
            email=email,
            role=str(event.data.get("role", "")),
            sent_at=event.created_at,
            sent_by=_sent_by(event, organization),
            waiting_days=max((now - event.created_at).days, 0),
        )
        for email, event in waiting.items()
        if email not in joined
    ]


def get_invitation_for(actor: Actor, invitation_id: object) -> Invitation:
    wanted = uuid_or_404(invitation_id)
    for invitation in invitations_for(actor):
        if invitation.id == wanted:
            return invitation
    raise Http404("No such invitation.")


def get_rw_invitation_for(actor: Actor, invitation_id: object) -> Invitation:
    """A waiting invitation the actor may re-send or cancel: 403 for anyone but an admin of
    the organization, then 404 as `get_invitation_for`."""
    access_org_admin(actor, actor.organization)
    return get_invitation_for(actor, invitation_id)


def _sent_by(event: AuditEvent, organization: Organization) -> str:
    """A colleague by name; anyone else (the partner whose order invited a customer's first
    person, vendor support) by organization."""
    if event.organization_id == organization.pk:
        user = event.actor_user
        return (user.full_name or user.email) if user is not None else event.actor_label
    if event.organization is not None:
        if event.organization.kind == Organization.Kind.VENDOR:
            return "Vendor support"
        return event.organization.name
    return event.actor_label


def get_license_for(actor: Actor, license_id: object) -> License:
    return get_object_or_404(
        License.objects.filter(account__in=accounts_for(actor)).select_related(
            "account", "product"
        ),
        pk=uuid_or_404(license_id),
    )
