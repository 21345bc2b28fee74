from django import forms


class NotificationsForm(forms.Form):
    expiry_reminders = forms.BooleanField(
        required=False,
        label="E-mail me when our care or a subscription is about to end",
        help_text="30 days and 7 days before the end, once each.",
    )
