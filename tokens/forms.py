from django import forms

from .models import Server


class ServerForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="How you recognise it, e.g. “PBX-Milan-prod”."
    )
    purpose = forms.ChoiceField(
        label="Purpose", choices=Server.Purpose.choices, initial=Server.Purpose.PRODUCTION
    )


class RenameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)


class AssignForm(forms.Form):
    quantity = forms.IntegerField(label="Holds", min_value=0, max_value=10_000_000)
