from typing import Any

from django.core.management.base import BaseCommand

from tokens.signing import create_signing_key


class Command(BaseCommand):
    help = (
        "Make a new Ed25519 signing key for license documents. Documents signed by the older "
        "keys keep verifying: those keys stay published until their documents' leases end."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        key = create_signing_key()
        self.stdout.write(f"New signing key {key.kid} is now signing license documents.")
