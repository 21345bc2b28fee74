"""Load the demo catalog, organizations, users and orders. Safe to run again: it only adds
what is missing."""

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from orders.models import Order
from orders.services import CustomerData, LineData, OrderData, place_order, unlock_order
from smartaccounts.actors import Actor
from smartaccounts.models import Organization, PartnerLink, Product, SmartAccount, User
from tokens import exchange
from tokens import services as server_services
from tokens.models import Server

PASSWORD = "demo1234"

PRODUCTS = [
    # code, name, unit, perpetual, subscription
    ("CALL_RECORDING", "Call Recording", "channels", True, True),
    ("ATTENDANT_CONSOLE", "Attendant Console", "seats", True, True),
    ("CONTACT_MANAGER", "Contact Manager", "users", True, True),
    ("QUEUE_MANAGER", "Queue Manager", "agents", True, True),
    ("CALL_ANALYTICS", "Call Analytics", "users", False, True),
    ("SPEECH_ANALYTICS", "Speech Analytics", "channels", False, True),
    ("CALL_BILLING", "Call Billing", "extensions", True, False),
    ("ADVANCED_VOICEMAIL", "Advanced Voicemail", "mailboxes", True, True),
]


class Command(BaseCommand):
    help = "Load demo data: catalog, partners, customers, users (password demo1234) and orders."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self._load()
        self.stdout.write(self.style.SUCCESS("Demo data is loaded."))
        for email in (
            "vendor@example.com",
            "distributor@example.com",
            "reseller@example.com",
            "second@example.com",
            "customer@example.com",
        ):
            self.stdout.write(f"  {email} / {PASSWORD}")

    def _load(self) -> None:
        for code, name, unit, perpetual, subscription in PRODUCTS:
            Product.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "unit": unit,
                    "allows_perpetual": perpetual,
                    "allows_subscription": subscription,
                },
            )
        vendor = self._org("Cloud Licensing Vendor", Organization.Kind.VENDOR, "vendor@example.com")
        distributor = self._org(
            "Demo Distributor", Organization.Kind.DISTRIBUTOR, "distributor@example.com"
        )
        reseller = self._org("Demo Reseller", Organization.Kind.RESELLER, "reseller@example.com")
        second_reseller = self._org(
            "Second Reseller", Organization.Kind.RESELLER, "second@example.com"
        )
        distributor.resellers.add(reseller)

        self._user("vendor@example.com", vendor, superuser=True)
        self._user("distributor@example.com", distributor)
        self._user("reseller@example.com", reseller)
        self._user("second@example.com", second_reseller)

        customer = self._customer("Demo Customer", "customer@example.com", reseller, "DC-001")
        second_customer = self._customer(
            "Second Customer", "it@second-customer.example", second_reseller, "SC-001"
        )
        # The customer's portal user exists before its first unlock, so no invitation is sent.
        self._user("customer@example.com", customer)

        now = timezone.now()

        def in_days(days: int) -> datetime:
            return now + timedelta(days=days)

        self._order(
            reseller,
            "DEMO-1001",
            customer,
            [
                LineData(
                    product="CALL_RECORDING",
                    quantity=50,
                    kind="perpetual",
                    care_ends_at=in_days(300),
                ),
                LineData(
                    product="ATTENDANT_CONSOLE",
                    quantity=10,
                    kind="subscription",
                    ends_at=in_days(365),
                ),
                LineData(
                    product="CONTACT_MANAGER",
                    quantity=200,
                    kind="perpetual",
                    care_ends_at=in_days(40),
                ),
                LineData(
                    product="CALL_ANALYTICS", quantity=25, kind="subscription", ends_at=in_days(180)
                ),
            ],
            unlock=True,
        )
        self._order(
            reseller,
            "DEMO-1002",
            customer,
            [
                LineData(
                    product="CALL_RECORDING", quantity=20, kind="subscription", ends_at=in_days(365)
                )
            ],
            unlock=False,
        )
        self._order(
            distributor,
            "DIST-2001",
            customer,
            [
                LineData(
                    product="QUEUE_MANAGER", quantity=15, kind="subscription", ends_at=in_days(365)
                )
            ],
            unlock=False,
            for_reseller=reseller,
        )
        self._order(
            second_reseller,
            "SR-3001",
            second_customer,
            [
                LineData(
                    product="ATTENDANT_CONSOLE",
                    quantity=5,
                    kind="perpetual",
                    care_ends_at=in_days(200),
                ),
                LineData(
                    product="CALL_RECORDING", quantity=30, kind="subscription", ends_at=in_days(90)
                ),
            ],
            unlock=True,
        )
        self._servers(customer.smart_account)

    def _servers(self, account: SmartAccount) -> None:
        """An activated production server and a test server waiting for capacity."""
        if Server.objects.filter(account=account).exists():
            return
        actor = Actor.system("demo data")
        milan = server_services.create_server(
            account=account, name="PBX-Milan-prod", purpose="production", actor=actor
        )
        minted = [
            server_services.assign_capacity(
                server=milan,
                product=Product.objects.get(code=code),
                quantity=quantity,
                actor=actor,
            ).token
            for code, quantity in (("CALL_RECORDING", 20), ("ATTENDANT_CONSOLE", 4))
        ]
        token = next(t for t in minted if t is not None)  # minted by the first assignment
        exchange.activate_server(
            token=token.raw,
            fingerprint="demo-milan-fingerprint",
            hostname="pbx-milan.local",
            version="Winter'26",
        )
        server_services.create_server(
            account=account, name="PBX-Rome-test", purpose="test", actor=actor
        )

    def _org(self, name: str, kind: str, email: str) -> Organization:
        org, _ = Organization.objects.get_or_create(
            name=name, kind=kind, defaults={"email": email, "country": "IT"}
        )
        return org

    def _customer(
        self, name: str, email: str, reseller: Organization, external_id: str
    ) -> Organization:
        org = self._org(name, Organization.Kind.CUSTOMER, email)
        SmartAccount.objects.get_or_create(organization=org, defaults={"name": name})
        PartnerLink.objects.get_or_create(
            reseller=reseller, customer=org, defaults={"external_id": external_id}
        )
        return org

    def _user(self, email: str, org: Organization, *, superuser: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User(email=email, organization=org, role=User.Role.ADMIN)
            user.set_password(PASSWORD)
            user.is_staff = user.is_superuser = superuser
            user.save()
        return user

    def _order(
        self,
        placed_by: Organization,
        reference: str,
        customer: Organization,
        lines: list[LineData],
        *,
        unlock: bool,
        for_reseller: Organization | None = None,
    ) -> None:
        if Order.objects.filter(placed_by=placed_by, reference=reference).exists():
            return
        actor = Actor.system("demo data")
        link = PartnerLink.objects.get(reseller=for_reseller or placed_by, customer=customer)
        order, _ = place_order(
            placed_by=placed_by,
            data=OrderData(
                reference=reference,
                reseller=for_reseller.pk if for_reseller else None,
                customer=CustomerData(
                    name=customer.name, email=customer.email, external_id=link.external_id
                ),
                lines=lines,
            ),
            actor=actor,
        )
        if unlock:
            unlock_order(order=order, actor=actor)
