#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licensing_portal.settings.base")
    from licensing_portal import embedded

    embedded.load()  # var/embedded.env, when `make run` wrote one
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
