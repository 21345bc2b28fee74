"""Calls the project's WSGI callable itself (licensing_portal.wsgi.application), as gunicorn
does: the test client builds its own handler from MIDDLEWARE and cannot see which handler a
path is dispatched to."""

import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@dataclass
class WsgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    # What the tests read of Django's test client responses, so a device test can take either.
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def content(self) -> bytes:
        return self.body

    def __getitem__(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.header(name)
        return default if value is None else value

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None


def call(
    path: str,
    *,
    method: str = "GET",
    body: bytes | dict | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    remote_addr: str = "127.0.0.1",
    secure: bool = False,
    app: Any = None,
    environ_extra: dict[str, str] | None = None,
) -> WsgiResponse:
    from licensing_portal.wsgi import application

    app = app or application

    raw = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443" if secure else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote_addr,
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(raw)),
    }
    if raw:
        environ["CONTENT_TYPE"] = "application/json"
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ.update(environ_extra or {})
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = response_headers

    # As the test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    headers_out = captured["headers"]
    cookies = [value for key, value in headers_out if key.lower() == "set-cookie"]
    return WsgiResponse(captured["status"], headers_out, content, cookies)


class WsgiClient:
    """The part of DRF's APIClient the device tests use (`get`, `post` with `format="json"` and
    META-style extras such as HTTP_AUTHORIZATION), sent through the production WSGI callable:
    the device endpoints are tested on the handler and middleware gunicorn runs them with."""

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        format: str | None = None,  # noqa: A002 - APIClient's name
        content_type: str | None = None,
        **extra: str,
    ) -> WsgiResponse:
        path, _, query = path.partition("?")
        raw: bytes
        if data is None:
            raw = b""
        elif isinstance(data, bytes):
            raw = data
        elif isinstance(data, str):
            raw = data.encode()
        else:
            raw = json.dumps(data).encode()
            content_type = content_type or "application/json"
        environ = dict(extra)
        if content_type:
            environ["CONTENT_TYPE"] = content_type
        return call(path, method=method, body=raw, query=query, environ_extra=environ)

    def get(self, path: str, data: Any = None, **extra: str) -> WsgiResponse:
        return self.request("GET", path, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("POST", path, data, **extra)

    def put(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("PUT", path, data, **extra)

    def delete(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("DELETE", path, data, **extra)

    def options(self, path: str, data: Any = None, **extra: Any) -> WsgiResponse:
        return self.request("OPTIONS", path, data, **extra)
