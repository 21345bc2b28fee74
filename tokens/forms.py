import json

from django import forms

from kernel.parsers import has_surrogate

from .limits import SERVER_NAME_MAX
from .models import Server


class ServerForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=SERVER_NAME_MAX,
        help_text="How you recognise it, e.g. “PBX-Milan-prod”.",
    )
    purpose = forms.ChoiceField(
        label="Purpose", choices=Server.Purpose.choices, initial=Server.Purpose.PRODUCTION
    )


class RenameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=SERVER_NAME_MAX)


class AssignForm(forms.Form):
    quantity = forms.IntegerField(label="Holds", min_value=0, max_value=10_000_000)


class OfflineRequestForm(forms.Form):
    request_file = forms.FileField(
        label="Request file",
        help_text="The file the AppSuite server wrote for offline activation (JSON).",
    )

    MAX_BYTES = 16 * 1024
    FIELDS = ("token", "fingerprint", "hostname", "version", "nonce")

    def clean_request_file(self) -> dict[str, str]:
        upload = self.cleaned_data["request_file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("This is too large to be a request file.")
        try:
            data = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise forms.ValidationError("This is not a request file (it is not JSON).") from exc
        if not isinstance(data, dict) or not all(
            isinstance(data.get(name, ""), str) for name in self.FIELDS
        ):
            raise forms.ValidationError("This is not a request file.")
        unknown = sorted(str(name)[:40] for name in data.keys() - set(self.FIELDS))
        if unknown:
            # A file from another product, or one edited by hand: nothing in it is ignored.
            raise forms.ValidationError(
                f"This is not a request file: it holds {', '.join(unknown[:5])}, which a "
                "request file does not."
            )
        if any(has_surrogate(data.get(name, "")) for name in self.FIELDS):
            raise forms.ValidationError("This is not a request file (it is not text).")
        missing = [name for name in ("token", "fingerprint", "nonce") if not data.get(name)]
        if missing:
            raise forms.ValidationError(f"The request file lacks: {', '.join(missing)}.")
        return {name: data.get(name, "") for name in self.FIELDS}
