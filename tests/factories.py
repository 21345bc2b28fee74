from datetime import timedelta

import factory
from django.utils import timezone

from smartaccounts.models import License, Organization, PartnerLink, Product, SmartAccount, User


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
