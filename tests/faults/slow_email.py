"""A file e-mail backend that is slow to send: the fault tests kill a worker in the middle.

Selected for a worker subprocess with EMAIL_BACKEND=tests.faults.slow_email.SlowFileBackend.
Before sending it leaves a marker file in SLOW_EMAIL_MARKER_DIR (so the test knows the worker
is inside the send, holding the outbox row) and sleeps SLOW_EMAIL_SECONDS; only then does the
file backend write the message.
"""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend


class SlowFileBackend(EmailBackend):
    def send_messages(self, email_messages):
        markers = os.environ.get("SLOW_EMAIL_MARKER_DIR")
        if markers:
            Path(markers).mkdir(parents=True, exist_ok=True)
            (Path(markers) / f"sending-{os.getpid()}-{time.time_ns()}").touch()
        time.sleep(float(os.environ.get("SLOW_EMAIL_SECONDS", "3")))
        return super().send_messages(email_messages)
