from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smartaccounts.actors import Actor
from smartaccounts.models import Organization
from smartaccounts.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key for an organization; the key alone is printed on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="The organization's exact name.")
        parser.add_argument("--name", default="Command line", help="A label for the key.")

    def handle(self, *args: Any, **options: Any) -> None:
        matches = list(Organization.objects.filter(name=options["org"])[:2])
        if not matches:
            raise CommandError(f"No organization named {options['org']!r}.")
        if len(matches) > 1:
            raise CommandError(f"More than one organization is named {options['org']!r}.")
        org = matches[0]
        api_key, raw = create_api_key(
            organization=org, name=options["name"], actor=Actor.system("manage.py create_api_key")
        )
        self.stdout.write(f"Created API key {api_key.prefix}… for {org.name} ({org.kind}).")
        self.stdout.write("It is shown only now; store it in your ordering system:")
        self.stdout.write(raw)
