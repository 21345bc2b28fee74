from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from tokens.signing import NoEndorsedKey, create_signing_key, signing_key


class Command(BaseCommand):
    help = (
        "Make a new Ed25519 signing key for license documents. It is published at once and "
        "signs once the root has endorsed it and /api/v1/keys may have left every cache. "
        "Documents signed by the older keys keep verifying: those keys stay published until "
        "their documents' leases end."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        key = create_signing_key()
        try:
            signing = signing_key(int(timezone.now().timestamp()))[0].kid
        except NoEndorsedKey:
            signing = None
        now_signing = (
            f"{signing} signs until then."
            if signing and signing != key.kid
            else "Until then no key signs: activations and syncs answer 503."
        )
        if key.endorsement:
            said = (
                f"New signing key {key.kid} is published and endorsed; it signs from "
                f"{key.signs_from:%Y-%m-%d %H:%M:%S} UTC."
            )
            self.stdout.write(said if signing == key.kid else f"{said} {now_signing}")
            return
        self.stdout.write(
            f"New signing key {key.kid} is published and PENDING ENDORSEMENT: it signs only "
            "once the vendor's root key endorses it (and not before "
            f"{key.signs_from:%Y-%m-%d %H:%M:%S} UTC). {now_signing}\n"
            "Endorse it where the root's private key is kept, against this database:\n"
            "  manage.py endorse_signing_keys --root-key ROOT.pem"
        )
