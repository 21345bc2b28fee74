"""E-mail backends of the outbox.

`FileBackend` is the embedded default's: every message is its own file in EMAIL_FILE_PATH,
written under a temporary name and renamed into place once complete, so a failed write (a full
disk, a message that cannot be built) leaves no empty or partial file behind, and a reader of
the folder never sees a message half written.
"""

import contextlib
import os
import tempfile
import uuid
from collections.abc import Sequence
from datetime import datetime

from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as DjangoFileBackend

SEPARATOR = b"-" * 79 + b"\n"


class FileBackend(DjangoFileBackend):
    """Django's file backend, one file per message, written atomically (temporary name, then
    rename). Finished files end in ``.log``; a temporary one starts with a dot and ends in
    ``.tmp``, and is removed when the write fails."""

    def open(self) -> bool:  # no stream is kept open between messages
        return False

    def close(self) -> None:
        pass

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        sent = 0
        with self._lock:
            for message in email_messages:
                try:
                    self._write_file(message)
                except Exception:
                    if not self.fail_silently:
                        raise
                else:
                    sent += 1
        return sent

    def _write_file(self, message: EmailMessage) -> None:
        folder: str = self.file_path  # type: ignore[attr-defined]  # set by Django's __init__
        content = message.message().as_bytes() + b"\n" + SEPARATOR
        # Named as Django's (local time, sortable), unique per message.
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005
        final = os.path.join(folder, f"{stamp}-{uuid.uuid4().hex}.log")
        descriptor, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
