from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tokens.trust import RootKeyMissing, root_public_text


class Command(BaseCommand):
    help = "Print the vendor root's public key in the form the agent takes (APPSUITE_ROOT_KEY)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(root_public_text())
        except RootKeyMissing as exc:
            raise CommandError(str(exc)) from exc
