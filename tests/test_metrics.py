"""/internal/metrics: sync outcomes and latency, daily jobs, lockouts and the outbox, exposed
to operators only (loopback or METRICS_ALLOWED_NETWORKS, or METRICS_TOKEN); the public gets
404. Multiprocess mode adds up the values of every process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from kernel.throttling import FailureLimiter
from lifecycle.services import run_daily_jobs
from notifications.models import OutboundEmail
from smartaccounts.actors import Actor
from tokens import services
from tokens.signing import _cache

from .factories import LicenseFactory
from .wsgi_app import call

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    # Each test's database starts without keys; never sign with one cached from another test.
    _cache.clear()
    yield
    _cache.clear()


def scrape(**kwargs) -> str:
    response = call("/internal/metrics", **kwargs)
    assert response.status == 200, response.body
    assert response.header("Content-Type").startswith("text/plain")
    assert response.cookies == []
    return response.body.decode()


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def activated(cast) -> dict:
    system = Actor.system("tests")
    account = cast.carol_customer.smart_account
    LicenseFactory(account=account, product=cast.recording, kind="perpetual", quantity=5)
    server = services.create_server(account=account, name="pbx-9", purpose="test", actor=system)
    token = services.assign_capacity(
        server=server, product=cast.recording, quantity=5, actor=system
    ).token
    body = {"token": token.raw, "fingerprint": "fp-1"}
    response = call("/api/v1/activation", method="POST", body=body)
    assert response.status == 201, response.body
    return response.json()


def sync(credential: str) -> int:
    return call(
        "/api/v1/activation/sync",
        method="POST",
        body={"fingerprint": "fp-1", "usage": {}},
        headers={"Authorization": f"Bearer {credential}"},
    ).status


def test_syncs_are_counted_by_outcome_with_their_latency(activated):
    before = scrape()

    assert sync(activated["credential"]) == 200
    assert sync("srv_unknown") == 401
    after = scrape()

    ok = {"status": "200", "code": ""}
    refused = {"status": "401", "code": "not_authenticated"}
    assert value(after, "licensing_sync_requests_total", **ok) == (
        value(before, "licensing_sync_requests_total", **ok) + 1
    )
    assert value(after, "licensing_sync_requests_total", **refused) == (
        value(before, "licensing_sync_requests_total", **refused) + 1
    )
    assert value(after, "licensing_sync_duration_seconds_count") == (
        value(before, "licensing_sync_duration_seconds_count") + 2
    )


def test_daily_jobs_report_their_duration_and_items(cast):
    before = scrape()

    result = run_daily_jobs()
    after = scrape()

    for job, items in result.items():
        assert value(after, "licensing_daily_job_items", job=job) == items
        assert value(after, "licensing_daily_job_duration_seconds_count", job=job) == (
            value(before, "licensing_daily_job_duration_seconds_count", job=job) + 1
        )
        assert value(after, "licensing_daily_job_last_run_timestamp_seconds", job=job) > 0


def test_a_tripped_failure_limit_is_counted_once(settings):
    settings.FAILED_ATTEMPTS_LIMIT = 2
    limiter = FailureLimiter("metrics-test")
    before = value(scrape(), "licensing_failed_attempt_lockouts_total", scope="metrics-test")

    limiter.record_failure("192.0.2.7")
    assert (
        value(scrape(), "licensing_failed_attempt_lockouts_total", scope="metrics-test") == before
    )
    limiter.record_failure("192.0.2.7")  # reaches the limit
    limiter.record_failure("192.0.2.7")

    assert limiter.retry_after("192.0.2.7") is not None
    after = value(scrape(), "licensing_failed_attempt_lockouts_total", scope="metrics-test")
    assert after == before + 1


def test_the_outbox_backlog_is_read_at_scrape_time():
    created = timezone.now() - timezone.timedelta(minutes=3)
    for _ in range(2):
        OutboundEmail.objects.create(kind="order", object_id="x", to=["a@x.example"])
    OutboundEmail.objects.filter().update(created_at=created)

    text = scrape()

    assert value(text, "licensing_outbox_unsent") == 2
    assert 170 < value(text, "licensing_outbox_oldest_unsent_age_seconds") < 400


@pytest.mark.parametrize("address", ["203.0.113.9", "10.1.2.3", "::ffff:8.8.8.8", "junk"])
def test_the_public_gets_404(address):
    response = call("/internal/metrics", remote_addr=address)

    assert response.status == 404
    assert response.header("Content-Type") == "application/problem+json"
    assert b"licensing_" not in response.body


def test_a_forwarded_loopback_address_does_not_open_it(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    response = call(
        "/internal/metrics", remote_addr="203.0.113.9", headers={"X-Forwarded-For": "127.0.0.1"}
    )

    assert response.status == 404


def test_an_allowed_network_opens_it_while_no_token_is_set(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert call("/internal/metrics", remote_addr="10.1.2.3").status == 200
    assert call("/internal/metrics", remote_addr="127.0.0.1").status == 404


def test_with_a_token_set_only_the_token_opens_it(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.METRICS_TOKEN = "s3cret-metrics-token"

    bearer = {"Authorization": "Bearer s3cret-metrics-token"}
    assert call("/internal/metrics", remote_addr="203.0.113.9", headers=bearer).status == 200
    assert call("/internal/metrics", remote_addr="10.1.2.3", headers=bearer).status == 200
    # An allowed address is not enough any more, nor loopback.
    assert call("/internal/metrics", remote_addr="10.1.2.3").status == 404
    assert call("/internal/metrics", remote_addr="127.0.0.1").status == 404
    for wrong in ("Bearer s3cret-metrics-tokeN", "Bearer ", "s3cret-metrics-token", "Basic x"):
        headers = {"Authorization": wrong}
        assert call("/internal/metrics", remote_addr="10.1.2.3", headers=headers).status == 404


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9;proto=https"},
        {"X-Real-IP": "203.0.113.9"},
    ],
)
def test_a_request_through_a_proxy_needs_the_token_in_production(settings, forwarded):
    """A proxy routing /internal/ by mistake connects from an allowed address (loopback, the
    compose network): its forwarded headers give it away, and without the token it gets 404."""
    assert call("/internal/metrics", remote_addr="127.0.0.1", headers=forwarded).status == 404

    settings.METRICS_TOKEN = "s3cret-metrics-token"
    bearer = {**forwarded, "Authorization": "Bearer s3cret-metrics-token"}
    assert call("/internal/metrics", remote_addr="127.0.0.1", headers=bearer).status == 200

    # In development (DEBUG) a local proxy may forward without a token.
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True
    assert call("/internal/metrics", remote_addr="127.0.0.1", headers=forwarded).status == 200


def test_check_deploy_warns_without_a_metrics_token(settings):
    from django.core.checks import run_checks

    def warnings() -> list[str]:
        return [m.id for m in run_checks(include_deployment_checks=True) if m.id]

    settings.METRICS_TOKEN = ""
    assert "licensing_portal.W001" in warnings()

    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert "licensing_portal.W001" not in warnings()


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    worker = textwrap.dedent(
        """
        from kernel.metrics import observe_sync, run_job
        observe_sync(200, "", 0.004)
        run_job("renewed", lambda: 3)
        """
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, cwd=ROOT)
    scraper = textwrap.dedent(
        """
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(generate_latest(registry).decode())
        """
    )
    text = subprocess.run(
        [sys.executable, "-c", scraper], env=env, check=True, cwd=ROOT, capture_output=True
    ).stdout.decode()

    assert value(text, "licensing_sync_requests_total", status="200", code="") == 2
    assert value(text, "licensing_daily_job_items", job="renewed") == 3
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
