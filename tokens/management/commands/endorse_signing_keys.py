from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens.trust import RootMismatch, endorse_pending, load_root_private, root_key_path


class Command(BaseCommand):
    help = (
        "Endorse every published signing key that has no endorsement yet with the root key. "
        "Run where the root's private half is kept (against the service's database), after "
        "rotate_signing_key: a new key signs only once endorsed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--root-key", help="the root key file (default: LICENSE_ROOT_KEY_FILE)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["root_key"]) if options["root_key"] else root_key_path()
        root = load_root_private(path)
        if root is None:
            raise CommandError(f"No root key at {path}.")
        try:
            done = endorse_pending(root)
        except RootMismatch as exc:
            raise CommandError(f"Nothing endorsed: {exc}.") from exc
        for key in done:
            self.stdout.write(
                f"Endorsed signing key {key.kid}; it signs from "
                f"{key.signs_from or key.created_at:%Y-%m-%d %H:%M:%S} UTC on."
            )
        if not done:
            self.stdout.write("Every signing key is endorsed already.")
