"""A real SMTP server (aiosmtpd) on a port of its own that a test can stop and start again:
stopped, the port is closed and every connection is refused, as during a mail outage."""

import email
import email.policy
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collect:
    def __init__(self, received: list[EmailMessage], lock: threading.Lock) -> None:
        self.received = received
        self.lock = lock

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            _Collect(self.received, self._lock), hostname="127.0.0.1", port=self.port
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuses(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) != 0
