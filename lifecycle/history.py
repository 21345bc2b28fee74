"""The account history as people read it: who (by name, as the viewer knows them), what happened
in words, and the object's name. Raw ids and event codes stay in the CSV.

Who is shown depends on who reads: a person of the reader's own organization by name or
e-mail, another organization by its name, vendor staff as "Vendor support" (their addresses
are nobody else's business), servers and scheduled jobs as themselves.
"""

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from orders.models import Order
from smartaccounts.actors import Actor
from smartaccounts.models import AuditEvent, License, Organization, Product
from tokens.models import Server

# E-mails between the vendor and the ordering partner (the order e-mail, its re-sending) are
# the partner's business: a customer never sees them in its history.
PARTNER_ONLY_PREFIX = "order.email"
PARTNER_ONLY = Q(action__startswith=PARTNER_ONLY_PREFIX)

VENDOR_SUPPORT = "Vendor support"

ACTION_LABELS = {
    "order.received": "Order received",
    "order.unlocked": "Order unlocked",
    "order.email_sent": "Order e-mail sent",
    "order.email_resent": "Order e-mail sent again",
    "order.customer_notified": "Customer told of new licenses",
    "license.created": "Licenses delivered",
    "license.expanded": "Licenses expanded",
    "license.renewed": "License renewed",
    "license.expired": "License expired",
    "license.auto_renew_changed": "Automatic renewal changed",
    "license.renewal_requested": "Partner asked to renew",
    "license.evaluation_issued": "Evaluation issued",
    "customer.created": "Customer created",
    "user.invited": "Person invited",
    "user.invitation_cancelled": "Invitation cancelled",
    "server.created": "Server created",
    "server.renamed": "Server renamed",
    "server.activated": "Server activated",
    "server.activation_repeated": "Activation repeated",
    "server.first_sync": "First sync",
    "server.back_online": "Server back online",
    "server.stale": "Server stopped syncing",
    "server.fingerprint_mismatch": "Sync from another machine refused",
    "server.offline_refreshed": "License file refreshed",
    "server.deactivated": "Server deactivated",
    "capacity.assigned": "Capacity changed",
    "token.minted": "Activation token created",
    "token.regenerated": "Activation token replaced",
    "reminder.sent": "Expiry reminder sent",
}

# Details flattened into CSV columns of their own; anything else goes into "more_details".
DETAIL_KEYS = (
    "reference",
    "order",
    "product",
    "quantity",
    "from",
    "to",
    "ends_at",
    "care_ends_at",
    "name",
    "purpose",
    "mode",
    "hostname",
    "version",
    "email",
    "role",
    "auto_renew",
)
CSV_HEADER = [
    "time_utc",
    "actor",
    "action",
    "action_in_words",
    "object_type",
    "object_id",
    "object_name",
    "address",
    *(f"detail_{key}" for key in DETAIL_KEYS),
    "more_details",
]


def action_label(code: str) -> str:
    """A short name for an event type, for the filter."""
    if code in ACTION_LABELS:
        return ACTION_LABELS[code]
    return code.replace(".", " ").replace("_", " ").capitalize()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class Names:
    """The names of the objects a batch of events mentions, fetched in four queries."""

    servers: dict[str, Server] = field(default_factory=dict)
    licenses: dict[str, License] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)

    @classmethod
    def for_events(cls, events: Sequence[AuditEvent]) -> "Names":
        ids: dict[str, set[str]] = {
            "tokens.server": set(),
            "smartaccounts.license": set(),
            "orders.order": set(),
        }
        codes: set[str] = set()
        for event in events:
            if event.object_type in ids and _is_uuid(event.object_id):
                ids[event.object_type].add(event.object_id)
            product = (event.data or {}).get("product")
            if isinstance(product, str):
                codes.add(product)
        names = cls()
        if ids["tokens.server"]:
            names.servers = {
                str(s.pk): s for s in Server.objects.filter(pk__in=ids["tokens.server"])
            }
        if ids["smartaccounts.license"]:
            names.licenses = {
                str(lic.pk): lic
                for lic in License.objects.filter(
                    pk__in=ids["smartaccounts.license"]
                ).select_related("product")
            }
        if ids["orders.order"]:
            names.orders = {
                str(o.pk): o
                for o in Order.objects.filter(pk__in=ids["orders.order"]).select_related(
                    "placed_by"
                )
            }
        if codes:
            names.products = {p.code: p for p in Product.objects.filter(code__in=codes)}
        return names


@dataclass
class Entry:
    """One line of the history as the viewer reads it."""

    event: AuditEvent
    actor: str
    action: str
    object_name: str
    address: str

    @property
    def created_at(self) -> datetime:
        return self.event.created_at


def _date(value: Any) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else None
    return moment.date().isoformat() if moment else str(value or "")


def _amount(quantity: Any, product: Product | None, code: str) -> str:
    if product is None:
        return f"{quantity} of {code}"
    return f"{quantity} {product.unit} of {product.name}"


def _own_people(viewer: Actor, event: AuditEvent) -> bool:
    return (
        viewer.organization is not None
        and event.organization_id is not None
        and event.organization_id == viewer.organization.pk
    )


def actor_name(event: AuditEvent, viewer: Actor, names: Names) -> str:
    org, user = event.organization, event.actor_user
    viewer_is_vendor = (
        viewer.organization is not None and viewer.organization.kind == Organization.Kind.VENDOR
    )
    if user is not None and user.is_staff and (org is None or org.kind == Organization.Kind.VENDOR):
        return (user.full_name or user.email) if viewer_is_vendor else VENDOR_SUPPORT
    if org is not None:
        if _own_people(viewer, event):
            return (user.full_name or user.email) if user is not None else event.actor_label
        return VENDOR_SUPPORT if org.kind == Organization.Kind.VENDOR else org.name
    # No organization: a server speaking for itself, someone holding an unlock link, or a
    # scheduled job.
    if event.actor_label.startswith("server ") and event.object_type == "tokens.server":
        server = names.servers.get(event.object_id)
        return f"Server {server.name}" if server else "The server"
    if event.actor_label.startswith("unlock link"):
        order = names.orders.get(event.object_id)
        partner = order.placed_by.name if order else "The partner"
        return f"{partner} (unlock link in the order e-mail)"
    label = event.actor_label
    if label in ("daily jobs", "outbox", "system"):
        return "Cloud Licensing (automatic)"
    return f"Cloud Licensing ({label})" if label else "Cloud Licensing"


def object_name(event: AuditEvent, names: Names) -> str:
    data = event.data or {}
    if event.object_type == "tokens.server":
        server = names.servers.get(event.object_id)
        return server.name if server else str(data.get("name") or data.get("to") or "a server")
    if event.object_type == "smartaccounts.license":
        lic = names.licenses.get(event.object_id)
        if lic is None:
            return str(data.get("product") or "a license")
        return f"{lic.product.name} ({lic.quantity} {lic.product.unit}, {lic.get_kind_display()})"
    if event.object_type == "orders.order":
        order = names.orders.get(event.object_id)
        return f"Order {order.reference}" if order else f"Order {data.get('reference', '')}"
    if event.object_type == "smartaccounts.user":
        return str(data.get("email", ""))
    if event.object_type == "smartaccounts.organization":
        return str(data.get("name", ""))
    return ""


def describe(event: AuditEvent, names: Names) -> str:
    """What happened, in words."""
    data = event.data or {}
    action = event.action
    thing = object_name(event, names)
    code = str(data.get("product") or "")
    product = names.products.get(code)
    lic = names.licenses.get(event.object_id)
    if lic is not None and product is None:
        product, code = lic.product, lic.product.code
    reference = data.get("reference") or data.get("order") or ""
    if action == "order.received":
        lines = data.get("lines")
        if not lines:
            return f"Order {reference} received"
        return f"Order {reference} received with {lines} line{'s' if lines != 1 else ''}"
    if action == "order.unlocked":
        return f"Order {reference} unlocked: its licenses can be used"
    if action == "order.email_sent":
        to = ", ".join(data.get("to") or [])
        return f"E-mail for {thing} sent to {to}" if to else f"E-mail for {thing} sent"
    if action == "order.email_resent":
        return f"E-mail for order {reference} sent again"
    if action == "order.customer_notified":
        to = ", ".join(data.get("to") or [])
        return f"Told {to or 'the customer'} that the licenses of {thing} are available"
    if action in ("license.created", "license.expanded"):
        amount = _amount(data.get("quantity"), product, code)
        verb = "Added" if action == "license.expanded" else "Delivered"
        return f"{verb} {amount}" + (f" from order {reference}" if reference else "")
    if action == "license.renewed":
        name = product.name if product else thing
        until = _date(data.get("ends_at") or data.get("care_ends_at"))
        if data.get("source") == "automatic":
            return f"{name} renewed automatically until {until}"
        return f"{name} renewed until {until}" + (f" by order {reference}" if reference else "")
    if action == "license.renewal_requested":
        name = product.name if product else thing
        partner = data.get("partner") or "the partner"
        return f"Asked {partner} to renew {name} (ends {_date(data.get('ends_at'))})"
    if action == "license.expired":
        return f"{thing} expired on {_date(data.get('ended_at'))}"
    if action == "license.auto_renew_changed":
        state = "on" if data.get("auto_renew") else "off"
        return f"Automatic renewal of {thing} turned {state}"
    if action == "license.evaluation_issued":
        amount = _amount(data.get("quantity"), product, code)
        return f"Evaluation of {amount} until {_date(data.get('ends_at'))}"
    if action == "customer.created":
        return f"{data.get('name', thing)} added as a customer"
    if action == "user.invited":
        # Alike whether or not the address has an account elsewhere (S27).
        return f"Invited {data.get('email', thing)} as {data.get('role', 'member')}"
    if action == "user.invitation_cancelled":
        return f"Cancelled the invitation of {data.get('email', thing)}"
    if action == "server.created":
        purpose = data.get("purpose")
        return f"Server {data.get('name') or thing} created" + (f" ({purpose})" if purpose else "")
    if action == "server.renamed":
        return f"Server renamed from {data.get('from')} to {data.get('to')}"
    if action == "capacity.assigned":
        before, after = int(data.get("from") or 0), int(data.get("to") or 0)
        unit = product.unit if product else ""
        name = product.name if product else code
        if before == 0:
            return f"Assigned {_amount(after, product, code)} to {thing}"
        if after == 0:
            return f"Took all {_amount(before, product, code)} back from {thing}"
        if after == before:
            # Events written before an unchanged save stopped being recorded.
            return f"Kept {name} on {thing} at {after} {unit}".rstrip()
        verb = "Raised" if after > before else "Lowered"
        return f"{verb} {name} on {thing} from {before} to {after} {unit}".rstrip()
    if action == "token.minted":
        return f"Activation token created for {thing}, valid until {_date(data.get('expires_at'))}"
    if action == "token.regenerated":
        return f"New activation token for {thing}; the previous one no longer works"
    if action == "server.activated":
        how = "offline, with a license file" if data.get("mode") == "offline" else "online"
        host = data.get("hostname")
        return f"{thing} activated {how}" + (f" on {host}" if host else "")
    if action == "server.activation_repeated":
        return (
            f"{thing} activated again after an unanswered attempt; "
            "the earlier credential no longer works"
        )
    if action == "server.first_sync":
        version = data.get("version")
        return f"{thing} synced for the first time" + (f" (version {version})" if version else "")
    if action == "server.back_online":
        return f"{thing} is syncing again"
    if action == "server.stale":
        return f"{thing} stopped syncing (last sync {_date(data.get('last_sync_at'))})"
    if action == "server.fingerprint_mismatch":
        return f"Refused a sync for {thing} from another machine: it may have been copied"
    if action == "server.offline_refreshed":
        return f"New license file issued for {thing}"
    if action == "server.deactivated":
        freed = data.get("freed")
        return f"{thing} deactivated" + (f", freeing {freed}" if freed else "")
    if action == "reminder.sent":
        people, items = data.get("recipients", 0), data.get("items", 0)
        return f"Expiry reminder e-mailed to {people} people about {items} ending soon"
    label = action_label(action)
    return f"{label}: {thing}" if thing else label


def entries(events: Sequence[AuditEvent], viewer: Actor) -> list[Entry]:
    """The events as the viewer reads them (the events need actor_user and organization)."""
    names = Names.for_events(events)
    return [
        Entry(
            event=event,
            actor=actor_name(event, viewer, names),
            action=describe(event, names),
            object_name=object_name(event, names),
            address=(event.address or "") if _own_people(viewer, event) else "",
        )
        for event in events
    ]


# --- CSV ---------------------------------------------------------------------------------------


def _flat(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_flat(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in sorted(value.items()))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def csv_row(entry: Entry) -> list[str]:
    event, data = entry.event, entry.event.data or {}
    # Keys starting with "_" are for the vendor's audit trail only (the mark of an invitation
    # whose address has an account elsewhere, S27): no reader of the history gets them.
    more = {k: v for k, v in data.items() if k not in DETAIL_KEYS and not k.startswith("_")}
    # No quoting here: csv_response makes every cell inert (S25).
    return [
        event.created_at.isoformat(),
        entry.actor,
        event.action,
        entry.action,
        event.object_type,
        event.object_id,
        entry.object_name,
        entry.address,
        *(_flat(data.get(key)) for key in DETAIL_KEYS),
        _flat(more),
    ]


def csv_rows(events: Iterable[AuditEvent], viewer: Actor, chunk: int = 500) -> Iterator[list[str]]:
    """Rows for the CSV, names looked up once per chunk of events."""
    batch: list[AuditEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == chunk:
            yield from (csv_row(entry) for entry in entries(batch, viewer))
            batch = []
    if batch:
        yield from (csv_row(entry) for entry in entries(batch, viewer))
