"""A small JSON-over-HTTPS client on the standard library."""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT = 15.0


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
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", "appsuite-agent/1.0")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return _reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as error:
        return _reply(error.code, error.read(), error.headers)
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(str(getattr(exc, "reason", exc))) from exc


def _reply(status: int, raw: bytes, headers: Any) -> Reply:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"detail": raw[:200].decode(errors="replace")}
    return Reply(status=status, body=body if isinstance(body, dict) else {}, headers=dict(headers))
