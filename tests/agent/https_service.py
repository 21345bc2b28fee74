"""A licensing service on this machine, over real TLS, that answers the activation API the way
the service does (tokens/exchange: keys, activation, sync with ETag and 304) with whatever
documents the test gives it. With a genuine vendor's documents it is the service; with a
forger's it is the site's own stand-in, which a shipped agent must not trust."""

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA (its PEM goes to --ca-file) and a certificate for 127.0.0.1 it signs."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@dataclass
class Service:
    """What the service publishes and hands out; a test changes it between the agent's calls.
    `document` is sent with ETag `etag`; a sync whose If-None-Match equals it gets 304."""

    keys: list[dict[str, Any]]
    document: str
    etag: str = '"1"'
    server_id: str = "srv-1"
    url: str = ""
    ca_file: str = ""
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any] | None, etag: str = "") -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if raw:
                self.send_header("Content-Type", "application/json")
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            service.requests.append(("GET", self.path, {}))
            if self.path == "/api/v1/keys":
                self._answer(200, {"keys": service.keys})
            else:
                self._answer(404, {"code": "not_found", "detail": "Not found."})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            service.requests.append(("POST", self.path, body))
            if self.path == "/api/v1/activation":
                answer = {
                    "server_id": service.server_id,
                    "credential": "srv_credential",
                    "license": service.document,
                }
                self._answer(201, answer, service.etag)
            elif self.path == "/api/v1/activation/sync":
                if self.headers.get("If-None-Match") == service.etag:
                    self._answer(304, None, service.etag)
                else:
                    self._answer(200, {"license": service.document}, service.etag)
            else:
                self._answer(404, {"code": "not_found", "detail": "Not found."})

    return Handler


@contextmanager
def https_service(folder: Path, service: Service) -> Iterator[Service]:
    """Serves `service` at https://127.0.0.1:<free port> for the block."""
    ca_file, cert_file, key_file = _certificates(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    service.url = f"https://127.0.0.1:{server.server_address[1]}"
    service.ca_file = str(ca_file)
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
