"""factory_boy factories for every model the tests build rows of.

Defaults are the model's own defaults wherever it has one, so ``ServerFactory(account=a,
name="PBX")`` makes the same row ``Server.objects.create(account=a, name="PBX")`` would. Rows a
test builds here skip the services on purpose (and so write no audit event); a test about a
service calls the service.
"""

from datetime import timedelta

import factory
from django.utils import timezone

from lifecycle.models import Digest, ExpiryNotice, Reminder, ToldThrough
from notifications.models import OutboundEmail
from orders.models import Order, OrderLine
from smartaccounts.models import (
    ApiKey,
    AuditEvent,
    License,
    LicenseRenewal,
    Organization,
    PartnerLink,
    Product,
    SmartAccount,
    User,
)
from smartaccounts.secrets import hash_secret, new_secret
from smartaccounts.services import API_KEY_PREFIX, API_KEY_VISIBLE_CHARS
from tokens.models import ActivationToken, Assignment, Server, ServerCredential


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    kind = Organization.Kind.RESELLER
    name = factory.Sequence(lambda n: f"Organization {n}")
    email = factory.Sequence(lambda n: f"contact{n}@org.example")
    country = "IT"


class CustomerFactory(OrganizationFactory):
    class Meta:
        skip_postgeneration_save = True

    kind = Organization.Kind.CUSTOMER
    name = factory.Sequence(lambda n: f"Customer {n}")
    smart_account = factory.RelatedFactory(
        "tests.factories.SmartAccountFactory", factory_related_name="organization"
    )


class SmartAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SmartAccount

    organization = factory.SubFactory(CustomerFactory, smart_account=None)
    name = factory.SelfAttribute("organization.name")


class PartnerLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerLink

    reseller = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@people.example")
    organization = factory.SubFactory(OrganizationFactory)
    role = User.Role.ADMIN
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"APP_{n}")
    name = factory.Sequence(lambda n: f"Application {n}")
    unit = "users"


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    account = factory.SubFactory(SmartAccountFactory)
    product = factory.SubFactory(ProductFactory)
    kind = License.Kind.PERPETUAL
    quantity = 10
    state = License.State.ACTIVE
    care_ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=365))


class LicenseRenewalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicenseRenewal

    license = factory.SubFactory(
        LicenseFactory,
        kind=License.Kind.SUBSCRIPTION,
        ends_at=factory.LazyFunction(lambda: timezone.now() + timedelta(days=365)),
    )
    period_ends_at = factory.LazyAttribute(lambda o: o.license.ends_at - timedelta(days=365))
    new_ends_at = factory.LazyAttribute(lambda o: o.license.ends_at)
    source = LicenseRenewal.Source.AUTOMATIC


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key row for ``raw`` (a fresh secret unless given); pass the same ``raw`` as the
    bearer token. Unlike ``create_api_key`` it records no ``api_key.created`` event."""

    class Meta:
        model = ApiKey

    class Params:
        raw = factory.LazyFunction(lambda: new_secret(API_KEY_PREFIX))

    organization = factory.SubFactory(OrganizationFactory)
    name = "tests"
    prefix = factory.LazyAttribute(lambda o: o.raw[:API_KEY_VISIBLE_CHARS])
    key_hash = factory.LazyAttribute(lambda o: hash_secret(o.raw))


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    action = "server.renamed"
    actor_label = "tests"


class ServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Server

    account = factory.SubFactory(SmartAccountFactory)
    name = factory.Sequence(lambda n: f"PBX-{n}")


class AssignmentFactory(factory.django.DjangoModelFactory):
    """An assignment row as it stands in the database. It does not move ``license.assigned``:
    tests that need the two to agree say so (or go through ``assign_capacity``)."""

    class Meta:
        model = Assignment

    server = factory.SubFactory(ServerFactory)
    license = factory.SubFactory(LicenseFactory, account=factory.SelfAttribute("..server.account"))
    quantity = 1


class ActivationTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivationToken

    class Params:
        raw = factory.Sequence(lambda n: f"token-{n}")

    server = factory.SubFactory(ServerFactory)
    token_hash = factory.LazyAttribute(lambda o: hash_secret(o.raw))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class ServerCredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServerCredential

    class Params:
        raw = factory.Sequence(lambda n: f"credential-{n}")

    server = factory.SubFactory(ServerFactory)
    credential_hash = factory.LazyAttribute(lambda o: hash_secret(o.raw))


class OrderFactory(factory.django.DjangoModelFactory):
    """A locked order of a reseller for a customer, without lines (add ``OrderLineFactory``)."""

    class Meta:
        model = Order

    reference = factory.Sequence(lambda n: f"PO-{n:05d}")
    reseller = factory.SubFactory(OrganizationFactory)
    placed_by = factory.SelfAttribute("reseller")
    account = factory.SubFactory(SmartAccountFactory)
    customer = factory.SelfAttribute("account.organization")
    request_digest = factory.Sequence(lambda n: f"{n:064x}")


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    position = factory.Sequence(lambda n: n + 1)
    action = OrderLine.Action.NEW
    license = factory.SubFactory(
        LicenseFactory,
        account=factory.SelfAttribute("..order.account"),
        state=License.State.LOCKED,
    )
    product = factory.SelfAttribute("license.product")
    kind = factory.SelfAttribute("license.kind")
    quantity = factory.SelfAttribute("license.quantity")
    care_ends_at = factory.SelfAttribute("license.care_ends_at")


class OutboundEmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboundEmail

    kind = "order"
    object_id = factory.Faker("uuid4")
    to = factory.LazyFunction(lambda: ["someone@example.test"])


class DigestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Digest

    partner = factory.SubFactory(OrganizationFactory)
    day = factory.LazyFunction(lambda: timezone.now().date())
    content = factory.LazyAttribute(lambda o: {"partner": o.partner.name, "day": o.day.isoformat()})


class ReminderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reminder

    digest = factory.SubFactory(DigestFactory)
    partner = factory.SelfAttribute("digest.partner")
    subject_id = factory.Faker("uuid4")
    reason = "overuse"
    marker = "10:CALL_RECORDING"


class ExpiryNoticeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExpiryNotice

    customer = factory.SubFactory(CustomerFactory)
    day = factory.LazyFunction(lambda: timezone.now().date())


class ToldThroughFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToldThrough

    organization = factory.SubFactory(CustomerFactory)
    topic = ToldThrough.Topic.REMINDER
    threshold = 30
    told_at = factory.LazyFunction(timezone.now)
    through = factory.LazyAttribute(lambda o: o.told_at + timedelta(days=o.threshold))
