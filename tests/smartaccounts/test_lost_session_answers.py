"""The answers of licensing_portal/lost_sessions.py through the test client: a request from a
page whose session ended or changed is told so, with a link back to the page it came from;
logging out is not such a request."""

from __future__ import annotations

import uuid

from django.test import Client

PAGE = "http://testserver/orders/"


def _rename_url() -> str:
    return f"/servers/{uuid.uuid4()}/rename/"


def test_an_htmx_post_after_the_session_ended_is_a_401_that_says_so(cast):
    client = Client()
    response = client.post(
        _rename_url(),
        {"name": "x"},
        headers={"HX-Request": "true", "HX-Current-URL": PAGE},
    )

    assert response.status_code == 401
    assert response["X-Session"] == "ended"
    assert response["X-Session-Login"] == "/login/?next=/orders/"
    assert "Your session ended" in response.content.decode()


def test_an_htmx_post_from_a_page_made_for_someone_else_says_the_session_changed(cast):
    client = Client()
    client.force_login(cast.carol_admin)
    response = client.post(
        _rename_url(),
        {"name": "x"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": PAGE,
            "X-Portal-User": str(cast.alice_admin.pk),
        },
    )

    assert response.status_code == 403
    assert response["X-Session"] == "changed"
    assert "Your session changed" in response.content.decode()


def test_a_form_posted_after_the_session_ended_logs_in_again_back_to_its_page(cast):
    client = Client()
    response = client.post(_rename_url(), {"name": "x"}, headers={"Referer": PAGE})

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/orders/"
    page = client.get(response["Location"]).content.decode()
    assert "Your session ended" in page


def test_a_form_with_a_stale_csrf_token_says_the_session_changed(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice_admin)
    response = client.post(
        _rename_url(), {"name": "x", "csrfmiddlewaretoken": "x" * 64}, headers={"Referer": PAGE}
    )

    assert response.status_code == 403
    page = response.content.decode()
    assert "Your session changed" in page and "/login/?next=/orders/" in page
    assert "your role" not in page.lower()


def test_logging_out_is_no_lost_session(cast):
    client = Client()
    client.force_login(cast.alice_admin)
    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert "Your session" not in client.get("/login/").content.decode()
