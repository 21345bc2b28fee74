import pytest

from orders.models import Order

from ..conftest import api_client_for
from .payloads import URL, order_body

pytestmark = pytest.mark.django_db


def test_unknown_unlock_links_are_limited_per_address(cast, client, settings):
    settings.FAILED_ATTEMPTS_LIMIT = 3
    for n in range(3):
        assert client.get(f"/unlock/guess-{n}/").status_code == 404

    limited = client.get("/unlock/guess-again/")

    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    # Another address is not affected.
    assert client.get("/unlock/guess-x/", REMOTE_ADDR="10.1.2.3").status_code == 404


def test_the_limit_also_covers_posts_and_changes_nothing(cast, client, settings):
    settings.FAILED_ATTEMPTS_LIMIT = 1
    api_client_for(cast.alice_reseller).post(URL, order_body("PO-LIM"), format="json")
    client.get("/unlock/wrong/")

    assert client.post("/unlock/wrong-again/").status_code == 429
    assert Order.objects.get().state == "locked"
