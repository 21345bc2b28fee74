"""A small JSON-over-HTTPS client on the standard library.

HTTPS only: a plain ``http://`` service is refused unless it is on this machine (loopback) and
the operator said ``--insecure-dev``; and while the agent trusts an operator-supplied root
(development only), it talks to a service on this machine only, https or not. Proxies come
from the environment (``HTTPS_PROXY``, ``NO_PROXY``), as for any command-line tool;
``--ca-file`` adds a private CA bundle (a proxy that inspects TLS, an internal service).
"""

import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

TIMEOUT = 15.0


class InsecureUrl(Exception):
    """The service URL is not HTTPS (and not an allowed development loopback)."""


@dataclass
class Transport:
    ca_file: str | None = None
    insecure_dev: bool = False
    loopback_only: bool = False  # set while an operator-supplied root is trusted

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def proxies(self) -> dict[str, str]:
        return urllib.request.getproxies()


transport = Transport()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    parsed = urlparse(url)
    if (
        transport.loopback_only
        and parsed.scheme in {"http", "https"}
        and parsed.hostname
        and not is_loopback(parsed.hostname)
    ):
        raise InsecureUrl(
            f"{url}: with an operator-supplied root key (APPSUITE_ROOT_KEY, development only) "
            "the agent talks only to a licensing service on this machine (loopback)"
        )
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname:
        if not is_loopback(parsed.hostname):
            raise InsecureUrl(f"{url}: the licensing service must be reached over https://")
        if not transport.insecure_dev:
            raise InsecureUrl(
                f"{url}: plain http is for development on this machine only; "
                "add --insecure-dev to allow it"
            )
        return
    raise InsecureUrl(f"{url}: not an https:// URL")


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=transport.context()))


class Unreachable(Exception):
    """The service could not be reached (network, DNS, TLS, timeout)."""


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", self.body.get("title", "")))


def call(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    try:
        check_url(url)
    except InsecureUrl as exc:
        raise Unreachable(str(exc)) from exc
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", "appsuite-agent/1.0")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _opener().open(request, timeout=TIMEOUT) as response:
            return _reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as error:
        return _reply(error.code, error.read(), error.headers)
    except (urllib.error.URLError, OSError) as exc:  # ssl errors and timeouts are OSErrors
        raise Unreachable(str(getattr(exc, "reason", exc))) from exc


def _reply(status: int, raw: bytes, headers: Any) -> Reply:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"detail": raw[:200].decode(errors="replace")}
    return Reply(status=status, body=body if isinstance(body, dict) else {}, headers=dict(headers))
