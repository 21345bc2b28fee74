"""The one helper turning a service's refusal into a page's answer (kernel/pages.py): the
status is the error code's own (STATUS_FOR_CODE), the words go beside the form fields the
error names, above the form, or in a message; a permission refusal is the 403 page."""

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.test import RequestFactory

from kernel.errors import STATUS_FOR_CODE, AccessDenied, DomainError
from kernel.pages import page_status, refusal

FORBIDDEN = sorted(code for code, status in STATUS_FOR_CODE.items() if status == 403)
SHOWN = sorted(code for code, status in STATUS_FOR_CODE.items() if status != 403)


class NameForm(forms.Form):
    name = forms.CharField()
    note = forms.CharField(required=False)


def page_request() -> HttpRequest:
    request = RequestFactory().post("/somewhere/")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    return request


def shown_messages(request: HttpRequest) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(request)]


def bound_form() -> NameForm:
    form = NameForm({"name": "PBX", "note": ""})
    assert form.is_valid()
    return form


@pytest.mark.parametrize("code", SHOWN)
def test_without_a_form_the_refusal_is_a_message_and_the_codes_status(code):
    request = page_request()

    status = refusal(request, DomainError(code, f"Refused: {code}."))

    assert status == (400 if STATUS_FOR_CODE[code] == 401 else STATUS_FOR_CODE[code])
    assert shown_messages(request) == [("error", f"Refused: {code}.")]


@pytest.mark.parametrize("code", SHOWN)
def test_with_a_form_the_refusal_is_a_form_error_and_the_codes_status(code):
    request = page_request()
    form = bound_form()

    status = refusal(request, DomainError(code, f"Refused: {code}."), form)

    assert status == (400 if STATUS_FOR_CODE[code] == 401 else STATUS_FOR_CODE[code])
    assert form.non_field_errors() == [f"Refused: {code}."]
    assert shown_messages(request) == []


@pytest.mark.parametrize("code", FORBIDDEN)
@pytest.mark.parametrize("with_form", [False, True])
def test_a_permission_refusal_is_the_403_page_and_shows_nothing(code, with_form):
    request = page_request()
    form = bound_form() if with_form else None

    with pytest.raises(PermissionDenied):
        refusal(request, DomainError(code, "No."), form)

    assert shown_messages(request) == []
    assert form is None or not form.errors


def test_an_access_denial_is_both_a_domain_error_and_djangos_permission_denied():
    denied = AccessDenied("Only admins.")

    assert isinstance(denied, DomainError) and isinstance(denied, PermissionDenied)
    assert (denied.code, denied.status, denied.detail) == ("permission_denied", 403, "Only admins.")
    with pytest.raises(PermissionDenied):
        refusal(page_request(), denied)


def test_errors_go_beside_the_fields_they_name():
    form = bound_form()
    exc = DomainError(
        "validation_error",
        "name: taken.",
        errors={"name": ["Taken.", "Too long."], "note": ["Odd."]},
    )

    assert refusal(page_request(), exc, form) == 400

    assert form.errors["name"] == ["Taken.", "Too long."]
    assert form.errors["note"] == ["Odd."]
    assert form.non_field_errors() == []


def test_errors_naming_no_field_of_the_form_show_the_detail_above_it():
    form = bound_form()
    exc = DomainError("validation_error", "nonce: required.", errors={"nonce": ["Required."]})

    assert refusal(page_request(), exc, form) == 400

    assert form.non_field_errors() == ["nonce: required."]
    assert "name" not in form.errors


def test_the_detail_may_go_beside_a_chosen_field_instead():
    form = bound_form()
    exc = DomainError("insufficient_capacity", "Only 2 more are available.")

    assert refusal(page_request(), exc, form, field="name") == 409

    assert form.errors["name"] == ["Only 2 more are available."]
    assert form.non_field_errors() == []


def test_an_unknown_code_is_a_bad_request():
    request = page_request()

    assert refusal(request, DomainError("no_such_code", "Hm.")) == 400
    assert shown_messages(request) == [("error", "Hm.")]


@pytest.mark.parametrize("code", sorted(c for c, s in STATUS_FOR_CODE.items() if s == 401))
def test_a_credential_refused_on_a_page_is_an_invalid_submission_not_a_login_prompt(code):
    # The caller is signed in; the refused credential is what the form or file carried.
    assert page_status(DomainError(code, "Refused.")) == 400
    assert refusal(page_request(), DomainError(code, "Refused."), bound_form()) == 400
