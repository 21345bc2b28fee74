"""The embedded default's file backend: a failed write leaves no file behind (issue #18)."""

import pytest
from django.core.mail import EmailMessage

from notifications.backends import FileBackend


def message(subject: str = "Order PO-1") -> EmailMessage:
    return EmailMessage(subject, "body", "from@example.com", ["to@example.com"])


def test_each_message_is_one_complete_file(tmp_path):
    backend = FileBackend(file_path=str(tmp_path))

    assert backend.send_messages([message("one"), message("two")]) == 2

    files = sorted(tmp_path.iterdir())
    assert [path.suffix for path in files] == [".log", ".log"]
    texts = sorted(path.read_text() for path in files)
    assert "Subject: one" in texts[0] and "Subject: two" in texts[1]
    assert all(text.endswith("-" * 79 + "\n") for text in texts)


def test_a_message_that_cannot_be_built_leaves_no_file(tmp_path):
    broken = message()
    broken.message = lambda: (_ for _ in ()).throw(ValueError("cannot build"))  # type: ignore

    with pytest.raises(ValueError):
        FileBackend(file_path=str(tmp_path)).send_messages([broken])

    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_in_the_middle_of_the_write_leaves_no_file(tmp_path, monkeypatch):
    import io

    class DiskFull(io.FileIO):
        def write(self, data):
            super().write(bytes(data)[:10])  # a few bytes reach the disk, then it is full
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("notifications.backends.os.fdopen", lambda fd, mode: DiskFull(fd, "wb"))

    with pytest.raises(OSError, match="No space"):
        FileBackend(file_path=str(tmp_path)).send_messages([message()])

    assert list(tmp_path.iterdir()) == []


def test_fail_silently_counts_only_what_was_written(tmp_path):
    broken = message("broken")
    broken.message = lambda: (_ for _ in ()).throw(ValueError("cannot build"))  # type: ignore

    sent = FileBackend(file_path=str(tmp_path), fail_silently=True).send_messages(
        [broken, message("fine")]
    )

    assert sent == 1
    (only,) = tmp_path.iterdir()
    assert "Subject: fine" in only.read_text()


def test_the_embedded_default_writes_mail_with_it(monkeypatch):
    import importlib

    from licensing_portal.settings import base

    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    monkeypatch.delenv("ANYMAIL_PROVIDER", raising=False)
    try:
        assert importlib.reload(base).EMAIL_BACKEND == "notifications.backends.FileBackend"
    finally:
        monkeypatch.undo()
        importlib.reload(base)
