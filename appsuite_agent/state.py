"""The agent's state folder: what it activated, the keys it trusts and the document it holds."""

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


@dataclass
class State:
    url: str = ""
    server_id: str = ""
    credential: str = ""
    fingerprint: str = ""
    mode: str = ""  # "online" or "offline"
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # kid -> JWK, pinned
    document: str = ""
    etag: str = ""
    last_verified_at: float = 0.0  # local time of the last successful verification
    last_contact_at: float = 0.0
    last_error: str = ""

    @property
    def activated(self) -> bool:
        return bool(self.document)


def load(folder: Path) -> State:
    path = folder / STATE_FILE
    if not path.exists():
        return State()
    data = json.loads(path.read_text())
    known = {name for name in State.__dataclass_fields__}
    return State(**{k: v for k, v in data.items() if k in known})


def save(folder: Path, state: State) -> None:
    """Write atomically, readable by the owner only (it holds the server's credential)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".state-")
    with os.fdopen(handle, "w") as out:
        json.dump(asdict(state), out, indent=2, sort_keys=True)
    os.chmod(temp, 0o600)
    os.replace(temp, folder / STATE_FILE)
