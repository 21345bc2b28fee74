"""The agent's state folder: what it activated, the keys it trusts and the document it holds."""

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


class StateUnreadable(Exception):
    """The state file is truncated, corrupted or not the agent's."""


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
    dropped: str = ""  # why the license was dropped (revoked, no capacity); empty while held
    clock_skew: float | None = None  # this machine's clock minus the service's, last contact

    @property
    def activated(self) -> bool:
        return bool(self.document)


def load(folder: Path) -> State:
    path = folder / STATE_FILE
    if not path.exists():
        return State()
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {name for name in State.__dataclass_fields__}
        state = State(**{k: v for k, v in data.items() if k in known})
        if not isinstance(state.keys, dict) or not all(
            isinstance(getattr(state, name), str)
            for name in ("url", "server_id", "credential", "fingerprint", "document", "etag")
        ):
            raise ValueError("unexpected field types")
        float(state.last_verified_at)
    except (OSError, ValueError, TypeError) as exc:
        raise StateUnreadable(
            f"the state file {path} is unreadable ({exc}). Start over with "
            "`appsuite-agent activate TOKEN --url URL --force` (a new token from the portal), "
            "or for an offline server `offline-apply` a fresh license file."
        ) from exc
    return state


def save(folder: Path, state: State) -> None:
    """Write atomically, readable by the owner only (it holds the server's credential)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".state-")
    with os.fdopen(handle, "w") as out:
        json.dump(asdict(state), out, indent=2, sort_keys=True)
    os.chmod(temp, 0o600)
    os.replace(temp, folder / STATE_FILE)
