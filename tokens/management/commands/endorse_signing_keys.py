from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens.trust import endorse_pending, load_root_private, root_key_path


class Command(BaseCommand):
    help = (
        "Endorse every published signing key that has no endorsement yet with the root key. "
        "Run where the root's private half is kept, after rotate_signing_key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--root-key", help="the root key file (default: LICENSE_ROOT_KEY_FILE)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["root_key"]) if options["root_key"] else root_key_path()
        root = load_root_private(path)
        if root is None:
            raise CommandError(f"No root key at {path}.")
        done = endorse_pending(root)
        for key in done:
            self.stdout.write(f"Endorsed signing key {key.kid}.")
        if not done:
            self.stdout.write("Every signing key is endorsed already.")
