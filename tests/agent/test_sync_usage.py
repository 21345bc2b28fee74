"""`appsuite-agent sync --usage PRODUCT=USED`: every product given is reported, however the
values are given; a malformed or repeated one is a clear error and nothing is sent."""

import pytest

from appsuite_agent import cli

from .https_service import Service, https_service
from .support import Vendor


@pytest.fixture
def service(vendor: Vendor, agent, tmp_path):
    """The agent activated against the service on this machine; yields (service, tls args)."""
    document = vendor.document(mode="online", lease=30 * 86400)
    with https_service(tmp_path, Service(keys=[vendor.jwk()], document=document)) as running:
        tls = ("--ca-file", running.ca_file)
        assert agent(*tls, "activate", "act_x", "--url", running.url)[0] == cli.OK
        yield running, tls


def reported(service: Service) -> list[dict]:
    return [body["usage"] for _, path, body in service.requests if path.endswith("/sync")]


@pytest.mark.parametrize(
    "argv",
    [
        ["--usage", "CALL_RECORDING=12", "--usage", "ATTENDANT_CONSOLE=2"],
        ["--usage", "CALL_RECORDING=12", "ATTENDANT_CONSOLE=2"],
    ],
)
def test_every_usage_given_is_reported(service, agent, argv):
    running, tls = service

    code, out = agent(*tls, "sync", *argv)

    assert code == cli.OK, out
    assert reported(running) == [{"CALL_RECORDING": 12, "ATTENDANT_CONSOLE": 2}]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("CALL_RECORDING", "is not PRODUCT=USED"),
        ("=3", "is not PRODUCT=USED"),
        ("CALL_RECORDING=many", "whole number"),
        ("CALL_RECORDING=-1", "whole number"),
    ],
)
def test_a_malformed_usage_is_a_clear_error(service, agent, capsys, value, says):
    running, tls = service

    with pytest.raises(SystemExit) as exited:
        agent(*tls, "sync", "--usage", value)

    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert reported(running) == []


def test_a_product_given_twice_is_a_clear_error(service, agent):
    running, tls = service

    code, out = agent(*tls, "sync", "--usage", "CALL_RECORDING=1", "--usage", "CALL_RECORDING=2")

    assert code == cli.FAILED and "CALL_RECORDING is given twice" in out
    assert reported(running) == []
