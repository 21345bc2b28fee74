from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens.trust import create_root_key, endorse_pending, load_root_private, root_key_path


class Command(BaseCommand):
    help = (
        "Make the vendor's root key (once): its private half endorses signing keys and is "
        "kept apart from them; prints the public half, which agents pin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", help="where to write it (default: LICENSE_ROOT_KEY_FILE)")
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing if the key already exists"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"]) if options["file"] else root_key_path()
        if path.exists():
            if options["if_missing"]:
                root = load_root_private(path)
                if root is not None and path == root_key_path():
                    endorse_pending(root)
                return
            raise CommandError(f"{path} exists: a root key is made once.")
        public = create_root_key(path)
        if path == root_key_path():
            root = load_root_private(path)
            assert root is not None
            endorse_pending(root)
        self.stderr.write(f"Root key written to {path} (keep it apart from the web servers).")
        self.stdout.write(public)
