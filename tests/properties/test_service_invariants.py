"""A Hypothesis state machine over the services (not HTTP).

Random sequences of orders (new lines and expansions, perpetual and subscription), unlocks,
renewal lines, evaluations, auto-renew switches, back-office revocations, assignments (also
beyond capacity), frees, token mints, online and offline activations, syncs, deactivations
and days passing (the daily jobs) keep the invariants of SECURITY.md S1 and S3:

- per account and product, capacity assigned on active licenses <= active capacity;
- every License.assigned equals the sum of its assignments and stays <= its quantity;
- one unrevoked credential per online (active or stale) server, none for any other;
- no usable activation token for a server that is no longer pending;
- an expired or revoked license appears in no license document.

Each example runs inside a savepoint that is rolled back, under a clock of its own
(time-machine), so every example starts from the shared cast only.
"""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lifecycle.services import run_daily_jobs
from orders.errors import OrderError
from orders.intake import CustomerData, LineData, OrderData, place_order
from orders.models import Order, OrderLine
from orders.services import unlock_order
from smartaccounts.actors import Actor
from smartaccounts.models import License
from smartaccounts.renewals import RENEWAL_GRACE, issue_evaluation, set_auto_renew
from tokens import exchange
from tokens import services as tokens
from tokens.documents import ONLINE, build_document
from tokens.errors import TokenError
from tokens.models import ActivationToken, Assignment, Server, ServerCredential
from tokens.signing import _cache

from ..factories import AssignmentFactory, LicenseFactory

pytestmark = pytest.mark.django_db

START = datetime(2031, 3, 10, 6, 0, tzinfo=UTC)
JOB_STRIDE_DAYS = 6  # the daily jobs run at least this often (RENEWAL_GRACE is 7 days)
SYSTEM = Actor.system("property tests")

# (product attribute on the cast, kind) pairs the products are sold as.
COMBOS = [
    ("recording", License.Kind.PERPETUAL),
    ("recording", License.Kind.SUBSCRIPTION),
    ("console", License.Kind.PERPETUAL),
    ("console", License.Kind.SUBSCRIPTION),
    ("analytics", License.Kind.SUBSCRIPTION),
    ("billing", License.Kind.PERPETUAL),
]
PRODUCTS = ["recording", "console", "analytics", "billing"]
SUBSCRIBABLE = ["recording", "console", "analytics"]
ONLINE_STATES = {Server.State.ACTIVE, Server.State.STALE}
USED_STATES = {Server.State.ACTIVE, Server.State.STALE, Server.State.OFFLINE}

lines_strategy = st.lists(
    st.tuples(
        st.sampled_from(COMBOS),
        st.integers(min_value=5, max_value=60),  # quantity
        st.integers(min_value=1, max_value=400),  # days to the term (or care) end
        st.booleans(),  # auto-renew (subscriptions)
    ),
    min_size=1,
    max_size=3,
)
index = st.integers(min_value=0, max_value=1_000)


def _pick(items: list, i: int):
    return items[i % len(items)]


def _sum(queryset) -> int:
    return queryset.aggregate(total=Sum("quantity"))["total"] or 0


def build_machine(cast):
    accounts = [
        (
            cast.alice_reseller,
            CustomerData(name="Carol Corp", email="it@carol.example", external_id="ALICE-CAROL"),
            cast.carol_customer.smart_account,
        ),
        (
            cast.bob_reseller,
            CustomerData(name="Dave Inc", email="it@dave.example", external_id="BOB-DAVE"),
            cast.dave_customer.smart_account,
        ),
    ]
    account_ids = [account.pk for _, _, account in accounts]

    class ServiceMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            _cache.clear()  # keys made in a rolled-back example must not sign the next one
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            self._travel = time_machine.travel(START, tick=True)
            self.clock = self._travel.start()
            self.orders: list = []
            self.licenses: list = []
            self.servers: list = []
            self.tokens: dict = {}  # server id -> (raw, expires_at), the latest minted
            self.credentials: dict = {}  # server id -> raw credential
            self.fingerprints: dict = {}
            self.activated: set = set()
            self.counter = 0
            self.evaluations = 0
            self.revocations = 0
            self.deactivations = 0

        def teardown(self):
            try:
                self._travel.stop()
            finally:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)
                _cache.clear()

        def _next(self, prefix: str) -> str:
            self.counter += 1
            return f"{prefix}-{self.counter}"

        def _licenses(self):
            """This example's licenses in the order they were made (ids are random)."""
            found = License.objects.in_bulk(self.licenses)
            return [found[pk] for pk in self.licenses]

        def _record_token(self, server_id, minted) -> None:
            if minted is not None:
                self.tokens[server_id] = (minted.raw, minted.expires_at)

        # --- Orders ---------------------------------------------------------------------

        @initialize(carol_lines=lines_strategy, dave_lines=lines_strategy)
        def seed(self, carol_lines, dave_lines):
            """Each account starts with one unlocked order and a server holding capacity:
            Carol's is activated online, Dave's waits with its token."""
            for who, lines in enumerate([carol_lines, dave_lines]):
                order = Order.objects.get(pk=self._place(who, lines))
                unlock_order(order=order, actor=SYSTEM)
                server_id = self._create_server(who, Server.Purpose.PRODUCTION)
                product = order.lines.order_by("position").first().product
                attr = next(a for a in PRODUCTS if getattr(cast, a) == product)
                self._assign(server_id, attr, 1)  # capacity and a token to activate with
                if who == 0:
                    self.activate(0)

        @precondition(lambda self: len(self.orders) < 8)
        @rule(who=st.integers(0, 1), lines=lines_strategy)
        def place_order(self, who, lines):
            self._place(who, lines)

        def _place(self, who, lines):
            partner, customer, account = accounts[who]
            now = timezone.now()
            data_lines = []
            for (attr, kind), quantity, days, auto_renew in lines:
                end = now + timedelta(days=days)
                if kind == License.Kind.SUBSCRIPTION:
                    line = LineData(
                        product=getattr(cast, attr).code,
                        quantity=quantity,
                        kind=kind,
                        ends_at=end,
                        auto_renew=auto_renew,
                    )
                else:
                    line = LineData(
                        product=getattr(cast, attr).code,
                        quantity=quantity,
                        kind=kind,
                        care_ends_at=end,
                    )
                data_lines.append(line)
            owned = set(
                License.objects.filter(account=account)
                .exclude(state=License.State.REVOKED)
                .values_list("product__code", flat=True)
            )
            order, created = place_order(
                placed_by=partner,
                data=OrderData(reference=self._next("PO"), customer=customer, lines=data_lines),
                actor=SYSTEM,
            )
            assert created and order.account_id == account.pk
            assert order.state == Order.State.LOCKED
            for line, order_line in zip(
                data_lines, order.lines.select_related("license").order_by("position"), strict=True
            ):
                expected = (
                    OrderLine.Action.EXPANSION if line.product in owned else OrderLine.Action.NEW
                )
                owned.add(line.product)
                assert order_line.action == expected
                assert order_line.license.state == License.State.LOCKED
                assert order_line.license.quantity == line.quantity
            self.orders.append(order.pk)
            self.licenses.extend(line.license_id for line in order.lines.order_by("position"))
            return order.pk

        @precondition(lambda self: self.orders)
        @rule(i=index)
        def unlock(self, i):
            order = Order.objects.get(pk=_pick(self.orders, i))
            was_locked = order.is_locked
            _, changed = unlock_order(order=order, actor=SYSTEM)
            assert changed == was_locked
            assert not License.objects.filter(
                order_lines__order=order, state=License.State.LOCKED
            ).exists()

        @rule(i=index, days=st.integers(1, 400))
        def renew(self, i, days):
            licenses = self._licenses()
            if not licenses:
                return
            lic = _pick(licenses, i)
            who = account_ids.index(lic.account_id)
            partner, customer, _ = accounts[who]
            now = timezone.now()
            if lic.kind == License.Kind.SUBSCRIPTION:
                new_end = max(now, lic.ends_at) + timedelta(days=days)
                line = LineData(renews=lic.pk, ends_at=new_end)
            else:
                new_end = max(now, lic.care_ends_at or now) + timedelta(days=days)
                line = LineData(renews=lic.pk, care_ends_at=new_end)
            data = OrderData(reference=self._next("RN"), customer=customer, lines=[line])
            if lic.state in (License.State.LOCKED, License.State.REVOKED):
                with pytest.raises(OrderError) as refused:
                    place_order(placed_by=partner, data=data, actor=SYSTEM)
                expected = (
                    "order_locked" if lic.state == License.State.LOCKED else "validation_error"
                )
                assert refused.value.code == expected
                event(f"renew: {expected}")
                return
            event(f"renew: {lic.state}")
            order, created = place_order(placed_by=partner, data=data, actor=SYSTEM)
            assert created and order.state == Order.State.UNLOCKED
            renewed = License.objects.get(pk=lic.pk)
            if lic.kind == License.Kind.SUBSCRIPTION:
                assert renewed.ends_at == new_end
            else:
                assert renewed.care_ends_at == new_end
            assert renewed.state == License.State.ACTIVE  # an expired one comes back
            assert renewed.assigned == lic.assigned  # no re-assignment

        @precondition(lambda self: self.evaluations < 2)
        @rule(
            who=st.integers(0, 1), attr=st.sampled_from(SUBSCRIBABLE), quantity=st.integers(1, 20)
        )
        def issue_evaluation(self, who, attr, quantity):
            self.evaluations += 1
            account = accounts[who][2]
            lic = issue_evaluation(
                account=account,
                product=getattr(cast, attr),
                quantity=quantity,
                actor=SYSTEM,
                days=20,
            )
            assert lic.state == License.State.ACTIVE and not lic.auto_renew
            self.licenses.append(lic.pk)

        @rule(i=index, enabled=st.booleans())
        def switch_auto_renew(self, i, enabled):
            subscriptions = [
                lic for lic in self._licenses() if lic.kind == License.Kind.SUBSCRIPTION
            ]
            if subscriptions:
                set_auto_renew(license=_pick(subscriptions, i), enabled=enabled, actor=SYSTEM)

        @precondition(lambda self: self.revocations < 2)
        @rule(i=index)
        def back_office_revokes(self, i):
            """Vendor staff set a license to revoked in the admin (a plain model save)."""
            self.revocations += 1
            licenses = self._licenses()
            if licenses:
                lic = _pick(licenses, i)
                lic.state = License.State.REVOKED
                lic.save()

        # --- Servers and capacity -------------------------------------------------------

        @precondition(lambda self: len(self.servers) < 5)
        @rule(who=st.integers(0, 1), purpose=st.sampled_from(Server.Purpose.values))
        def create_server(self, who, purpose):
            self._create_server(who, purpose)

        def _create_server(self, who, purpose):
            server = tokens.create_server(
                account=accounts[who][2], name=self._next("pbx"), purpose=purpose, actor=SYSTEM
            )
            assert server.is_pending
            self.servers.append(server.pk)
            return server.pk

        def _assign(self, server_id, attr, quantity):
            server = Server.objects.get(pk=server_id)
            product = getattr(cast, attr)
            active = License.objects.filter(
                account_id=server.account_id, product=product, state=License.State.ACTIVE
            )
            if server.state == Server.State.OFFLINE:
                # A license file carries perpetual capacity only: that is all it may draw on.
                active = active.filter(kind=License.Kind.PERPETUAL)
            capacity = _sum(active)
            used = _sum(Assignment.objects.filter(license__in=active))
            current = _sum(Assignment.objects.filter(server=server, license__in=active))
            had_token = ActivationToken.objects.filter(
                server=server,
                used_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            ).exists()
            if server.is_deactivated:
                with pytest.raises(TokenError) as refused:
                    tokens.assign_capacity(
                        server=server, product=product, quantity=quantity, actor=SYSTEM
                    )
                assert refused.value.code == "validation_error"
                return
            if quantity - current > capacity - used:
                with pytest.raises(TokenError) as refused:
                    tokens.assign_capacity(
                        server=server, product=product, quantity=quantity, actor=SYSTEM
                    )
                assert refused.value.code == "insufficient_capacity"
                event("assign: insufficient_capacity")
                assert refused.value.extra["available"] == capacity - used
                assert _sum(Assignment.objects.filter(server=server, license__in=active)) == current
                return
            result = tokens.assign_capacity(
                server=server, product=product, quantity=quantity, actor=SYSTEM
            )
            assert _sum(Assignment.objects.filter(server=server, license__in=active)) == quantity
            assert result.available == capacity - used - (quantity - current)
            expect_token = server.is_pending and quantity > 0 and not had_token
            assert (result.token is not None) == expect_token
            self._record_token(server.pk, result.token)
            event("assign: ok" if quantity else "assign: freed")

        @precondition(lambda self: self.servers)
        @rule(
            i=index,
            j=index,
            mode=st.sampled_from(["within", "within", "free", "beyond", "any product"]),
            amount=st.integers(0, 100),
        )
        def assign(self, i, j, mode, amount):
            """Free, assign within what is available, or ask for more than there is."""
            server = Server.objects.get(pk=_pick(self.servers, i))
            owned = [
                attr
                for attr in PRODUCTS
                if License.objects.filter(
                    account_id=server.account_id,
                    product=getattr(cast, attr),
                    state=License.State.ACTIVE,
                ).exists()
            ]
            attr = _pick(owned if owned and mode != "any product" else PRODUCTS, j)
            active = License.objects.filter(
                account_id=server.account_id,
                product=getattr(cast, attr),
                state=License.State.ACTIVE,
            )
            available = _sum(active) - _sum(Assignment.objects.filter(license__in=active))
            current = _sum(Assignment.objects.filter(server=server, license__in=active))
            quantity = {
                "within": current + available * amount // 100,
                "free": 0,
                "beyond": current + available + 1 + amount,
                "any product": amount,
            }[mode]
            self._assign(server.pk, attr, quantity)

        @precondition(lambda self: self.servers and self.deactivations < 3)
        @rule(i=index)
        def deactivate(self, i):
            self._deactivate(_pick(self.servers, i))

        @precondition(lambda self: self.credentials and self.deactivations < 3)
        @rule(i=index)
        def deactivate_activated_server(self, i):
            self._deactivate(_pick(list(self.credentials), i))

        def _deactivate(self, server_id):
            self.deactivations += 1
            server = tokens.deactivate_server(server=Server(pk=server_id), actor=SYSTEM)
            assert server.is_deactivated
            assert not Assignment.objects.filter(server=server).exists()
            event("deactivate: activated" if server_id in self.activated else "deactivate: pending")

        @precondition(lambda self: self.servers)
        @rule(i=index)
        def mint(self, i):
            server = Server.objects.get(pk=_pick(self.servers, i))
            if not server.is_pending:
                with pytest.raises(TokenError) as refused:
                    tokens.mint_token(server=server, actor=SYSTEM)
                assert refused.value.code == "server_not_pending"
                return
            self._record_token(server.pk, tokens.mint_token(server=server, actor=SYSTEM))

        @precondition(lambda self: self.tokens)
        @rule(i=index)
        def activate(self, i):
            server_id = _pick(list(self.tokens), i)
            raw, expires_at = self.tokens[server_id]
            server = Server.objects.get(pk=server_id)
            fingerprint = f"fp-{server_id}"
            if server.is_pending and timezone.now() < expires_at:
                activation = exchange.activate_server(
                    token=raw, fingerprint=fingerprint, hostname="pbx", version="W26"
                )
                assert activation.server.state == Server.State.ACTIVE
                self.credentials[server_id] = activation.credential
                self.fingerprints[server_id] = fingerprint
                self.activated.add(server_id)
                event("activate: ok")
                self._sync(server_id)  # the server's first sync
                return
            if server.is_pending:
                expected = "token_expired"
            elif server.state in USED_STATES or server_id in self.activated:
                expected = "token_used"
            else:  # deactivated before activation: its token was revoked
                expected = "token_invalid"
            with pytest.raises(TokenError) as refused:
                exchange.activate_server(
                    token=raw, fingerprint=fingerprint, hostname="pbx", version="W26"
                )
            assert refused.value.code == expected
            assert Server.objects.get(pk=server_id).state == server.state
            event(f"activate: {expected}")

        @precondition(lambda self: self.tokens)
        @rule(i=index)
        def activate_offline(self, i):
            server_id = _pick(list(self.tokens), i)
            raw, expires_at = self.tokens[server_id]
            server = Server.objects.get(pk=server_id)
            fingerprint = f"fp-{server_id}"
            request = exchange.OfflineRequest(
                token=raw, fingerprint=fingerprint, hostname="pbx", version="W26", nonce="n-1"
            )
            holds_subscription = Assignment.objects.filter(
                server=server,
                license__state=License.State.ACTIVE,
                license__kind=License.Kind.SUBSCRIPTION,
            ).exists()
            if holds_subscription:
                expected = "subscription_requires_online"
            elif server.is_pending:
                expected = None if timezone.now() < expires_at else "token_expired"
            elif server.state == Server.State.OFFLINE:
                expected = None
            else:
                expected = "server_not_pending"
            if expected is None:
                exchange.activate_offline(server=server, request=request, actor=SYSTEM)
                assert Server.objects.get(pk=server_id).state == Server.State.OFFLINE
                self.activated.add(server_id)
                event("offline: ok")
                return
            event(f"offline: {expected}")
            with pytest.raises(TokenError) as refused:
                exchange.activate_offline(server=server, request=request, actor=SYSTEM)
            assert refused.value.code == expected
            assert Server.objects.get(pk=server_id).state == server.state

        @precondition(lambda self: self.credentials)
        @rule(i=index)
        def sync(self, i):
            self._sync(_pick(list(self.credentials), i))

        def _sync(self, server_id):
            raw = self.credentials[server_id]
            state = Server.objects.get(pk=server_id).state
            sync = dict(credential=raw, fingerprint=self.fingerprints[server_id], usage={})
            if state == Server.State.DEACTIVATED:
                with pytest.raises(TokenError) as refused:
                    exchange.sync_server(version="W27", **sync)
                assert refused.value.code == "credential_revoked"
                event("sync: credential_revoked")
                return
            result = exchange.sync_server(version="W27", **sync)
            server = Server.objects.select_related("account").get(pk=server_id)
            assert server.state == Server.State.ACTIVE  # a stale server is back
            event(f"sync: {bool(result.document.claims['entitlements'])} entitlements")
            self._check_document(server, result.document.claims)
            # The same server asking with its ETag gets "not modified".
            again = exchange.sync_server(version="W27", if_none_match=result.etag, **sync)
            assert again.document is None and again.etag == result.etag

        # --- Time -----------------------------------------------------------------------

        @rule(days=st.integers(1, 60), fleet_syncs=st.booleans())
        def days_pass(self, days, fleet_syncs):
            """Days pass with the daily jobs running (here every 6 days at most, within the
            renewal grace); the fleet syncs afterwards, or stays silent."""
            while days > 0:
                step = min(days, JOB_STRIDE_DAYS)
                days -= step
                self.clock.shift(timedelta(days=step))
                now = timezone.now()
                done = run_daily_jobs(now=now)
                event(f"jobs: renewed={bool(done['renewed'])} expired={bool(done['expired'])}")
                # Everything due was renewed or expired: no active license has a lapsed term.
                assert not License.objects.filter(
                    state=License.State.ACTIVE, ends_at__lte=now
                ).exists()
                # A subscription that renews itself never lapses while the job runs; only one
                # switched back on long after it expired stays expired.
                assert not License.objects.filter(
                    kind=License.Kind.SUBSCRIPTION,
                    auto_renew=True,
                    state=License.State.EXPIRED,
                    ends_at__gt=now - RENEWAL_GRACE,
                ).exists()
            if fleet_syncs:
                for server_id in list(self.credentials):
                    self._sync(server_id)

        # --- Invariants -----------------------------------------------------------------

        @invariant()
        def capacity_is_never_over_assigned(self):
            # A few aggregate reads per step (not a query per license): the invariants run
            # after every rule of every example.
            owned: dict = defaultdict(int)
            for row in (
                License.objects.filter(account_id__in=account_ids, state=License.State.ACTIVE)
                .values("account_id", "product_id")
                .annotate(total=Sum("quantity"))
            ):
                owned[row["account_id"], row["product_id"]] = row["total"]
            for row in (
                Assignment.objects.filter(
                    license__account_id__in=account_ids, license__state=License.State.ACTIVE
                )
                .values("license__account_id", "license__product_id")
                .annotate(total=Sum("quantity"))
            ):
                key = row["license__account_id"], row["license__product_id"]
                assert row["total"] <= owned[key], key
            held = dict(
                Assignment.objects.filter(license__account_id__in=account_ids)
                .values("license_id")
                .annotate(total=Sum("quantity"))
                .values_list("license_id", "total")
            )
            for lic in License.objects.filter(account_id__in=account_ids):
                assert lic.assigned == held.get(lic.pk, 0), lic
                assert lic.assigned <= lic.quantity, lic
            for assignment in Assignment.objects.select_related("server", "license"):
                assert assignment.server.account_id == assignment.license.account_id
                assert not assignment.server.is_deactivated
                assert assignment.license.state != License.State.LOCKED

        @invariant()
        def one_credential_per_online_server(self):
            now = timezone.now()
            live = Counter(
                ServerCredential.objects.filter(
                    server__account_id__in=account_ids, revoked_at__isnull=True
                ).values_list("server_id", flat=True)
            )
            usable = Counter(
                ActivationToken.objects.filter(
                    server__account_id__in=account_ids,
                    used_at__isnull=True,
                    revoked_at__isnull=True,
                    expires_at__gt=now,
                ).values_list("server_id", flat=True)
            )
            for server in Server.objects.filter(account_id__in=account_ids):
                assert live[server.pk] == (1 if server.state in ONLINE_STATES else 0), server.state
                assert usable[server.pk] <= (1 if server.is_pending else 0), server.state

        @invariant()
        def expired_and_revoked_licenses_are_in_no_document(self):
            now = timezone.now()
            # A server that holds nothing has nothing its document could grant.
            holding = Server.objects.filter(
                account_id__in=account_ids, pk__in=Assignment.objects.values("server_id")
            ).select_related("account")
            for server in holding:
                document = build_document(server, mode=ONLINE, now=now)
                self._check_document(server, document.claims)

        def _check_document(self, server, claims):
            now = timezone.now()
            granted = {}
            ids = [item["license"] for item in claims["entitlements"]]
            listed = {str(lic.pk): lic for lic in License.objects.filter(pk__in=ids)}
            for item in claims["entitlements"]:
                lic = listed[item["license"]]
                assert lic.state == License.State.ACTIVE, (lic.state, item)
                assert lic.ends_at is None or lic.ends_at > now, item
                assert lic.account_id == server.account_id
                granted[str(lic.pk)] = item["quantity"]
            live = Assignment.objects.filter(
                server=server, license__state=License.State.ACTIVE
            ).select_related("license")
            expected = {
                str(a.license_id): a.quantity
                for a in live
                if a.license.ends_at is None or a.license.ends_at > now
            }
            assert granted == expected

    return ServiceMachine


def test_services_keep_every_invariant(cast):
    # Hypothesis enables a random subset of the rules per example ("swarm testing"); with a
    # fixed seed (derandomize) the same 15 short examples run every time and reach every rule
    # (`--hypothesis-show-statistics` lists how often). Each step checks every invariant.
    machine = build_machine(cast)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_machine_catches_an_over_assignment(cast):
    """The invariants are not vacuous: a capacity counter bypassing the service is caught."""
    machine = build_machine(cast)()
    try:
        lic = LicenseFactory(
            account=cast.carol_customer.smart_account,
            product=cast.recording,
            kind=License.Kind.PERPETUAL,
            quantity=5,
            state=License.State.ACTIVE,
            care_ends_at=None,
        )
        server = tokens.create_server(
            account=cast.carol_customer.smart_account, name="x", purpose="test", actor=SYSTEM
        )
        AssignmentFactory(server=server, license=lic, quantity=3)  # assigned stays 0
        with pytest.raises(AssertionError):
            machine.capacity_is_never_over_assigned()
    finally:
        machine.teardown()
