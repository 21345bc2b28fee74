import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import License, Product, User


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The e-mail address and password do not match an active account.",
    }

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        return username.lower()


class InvitablePasswordResetForm(PasswordResetForm):
    """Password reset that also reaches invited users who never set a password.

    Links are built from SITE_URL, never from the request's Host header.
    """

    def get_users(self, email: str) -> Iterator[User]:
        return iter(User.objects.filter(email__iexact=email, is_active=True))

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Queue the reset e-mail through the outbox, like every other e-mail: the link's
        token is made when it is sent, and a mail server hiccup only delays it."""
        from notifications.tasks import enqueue_email

        from .emails import PASSWORD_RESET_EMAIL

        with transaction.atomic():
            users = list(self.get_users(self.cleaned_data["email"]))
            for user in users:
                enqueue_email(kind=PASSWORD_RESET_EMAIL, object_id=str(user.pk), to=[user.email])
            if not users:
                # The same work for an address with no account, so the answer's timing tells
                # nothing: a row for nobody, which the sender finds nothing to send for.
                enqueue_email(kind=PASSWORD_RESET_EMAIL, object_id=str(uuid.UUID(int=0)), to=[])


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Name",
        help_text="Where the key is used, e.g. “ERP production”.",
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    full_name = forms.CharField(label="Name", max_length=200, required=False)
    role = forms.ChoiceField(
        label="Role",
        choices=User.Role.choices,
        initial=User.Role.MEMBER,
        help_text="Viewers read; members also manage servers and capacity; admins also manage "
        "people and API keys.",
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=User.Role.choices)


class EvaluationForm(forms.Form):
    product: "forms.ModelChoiceField[Product]" = forms.ModelChoiceField(
        queryset=None, label="Application"
    )
    quantity = forms.IntegerField(min_value=1, max_value=100_000, initial=5)
    days = forms.IntegerField(min_value=1, max_value=90, initial=30, label="Days")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        product = self.fields["product"]
        assert isinstance(product, forms.ModelChoiceField)
        product.queryset = Product.objects.filter(is_active=True, allows_subscription=True)


class LicenseAdminForm(forms.ModelForm):  # type: ignore[type-arg]  # not generic at run time
    """The back office's license form: the quantity never drops below what servers hold.

    The database refuses it too (assigned <= quantity), but as a 500; here staff read which
    servers hold the capacity.
    """

    class Meta:
        model = License
        fields = [
            "account",
            "product",
            "kind",
            "quantity",
            "state",
            "starts_at",
            "ends_at",
            "care_ends_at",
            "auto_renew",
            "renewal_months",
            "source",
        ]

    def clean_quantity(self) -> int | None:
        quantity: int | None = self.cleaned_data["quantity"]
        if self.instance._state.adding or quantity is None:
            return quantity
        # The admin validates and saves in one transaction; the row lock keeps an assignment
        # made meanwhile from slipping in between this check and the save.
        assigned = (
            License.objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("assigned", flat=True)
            .first()
        )
        if assigned and quantity < assigned:
            raise ValidationError(
                "%(assigned)s %(unit)s of this license are assigned to servers (%(held)s), so "
                "the quantity cannot go below %(assigned)s. Take the capacity off those "
                "servers first (on their pages in the portal), then lower the quantity.",
                code="below_assigned",
                params={
                    "assigned": assigned,
                    "unit": self.instance.product.unit,
                    "held": self._holders() or "servers of this account",
                },
            )
        return quantity

    def _holders(self) -> str:
        """Which servers hold this license's capacity ("PBX-1: 10, PBX-2: 5")."""
        # The reverse relation of the servers' assignments (tokens builds on this app, so it
        # is reached by name rather than imported).
        assignments = getattr(self.instance, "assignments", None)
        if assignments is None:
            return ""
        return ", ".join(
            f"{a.server.name}: {a.quantity}"
            for a in assignments.select_related("server").order_by("server__name")
            if a.quantity
        )
