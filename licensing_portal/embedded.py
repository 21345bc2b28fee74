"""The embedded default's settings file, ``var/embedded.env``.

``make run`` writes it (debug as the server runs, ``SITE_URL`` from ``PORT``, the mail folder,
and the keys and host settings given to ``make run``, if any) so that the commands a developer
then runs by hand — ``manage.py create_api_key``, ``run_daily_jobs`` and
the rest — see the same settings as the server ``make run`` started. ``manage.py`` reads it;
variables already in the environment win, and nothing else (gunicorn, Celery, the tests)
reads it, so a production deployment configured by its environment never does.

Runs without Django: ``python -m licensing_portal.embedded --site-url URL --mail var/mail``.
"""

import argparse
import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent


def env_file() -> Path:
    return Path(os.environ.get("VAR_DIR") or BASE_DIR / "var") / "embedded.env"


def load() -> None:
    """Reads var/embedded.env if ``make run`` wrote one; the environment keeps precedence."""
    path = env_file()
    if path.is_file():
        load_dotenv(path, override=False)


# Settings `make run` may be given that the commands run by hand must share with its server:
# the keys under which secrets are hashed and signing keys encrypted, and the host settings.
PASSED_THROUGH = (
    "DJANGO_SECRET_KEY",
    "SECRET_HASH_KEY",
    "LICENSE_KEY_PASSPHRASE",
    "OUTBOX_LINK_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_HSTS_SECONDS",
)


def write(*, site_url: str, mail_dir: str) -> Path:
    path = env_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `make run`: the embedded default, for commands run by hand with",
        "# manage.py. Variables set in the environment take precedence. Not for production.",
        f"DJANGO_DEBUG={os.environ.get('DJANGO_DEBUG') or '1'}",
        f"SITE_URL={site_url}",
        f"EMAIL_FILE_PATH={mail_dir}",
    ]
    lines += [f"{name}={os.environ[name]}" for name in PASSED_THROUGH if os.environ.get(name)]
    # It may hold keys: readable by the owner only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-url", required=True)
    parser.add_argument("--mail", required=True)
    args = parser.parse_args()
    write(site_url=args.site_url.rstrip("/"), mail_dir=str(Path(args.mail).resolve()))


if __name__ == "__main__":
    main()
