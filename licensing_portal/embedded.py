"""The embedded default's settings file, ``var/embedded.env``.

``make run`` writes it (debug on, ``SITE_URL`` from ``PORT``, the mail folder) so that the
commands a developer then runs by hand — ``manage.py create_api_key``, ``run_daily_jobs`` and
the rest — see the same settings as the server ``make run`` started. ``manage.py`` reads it;
variables already in the environment win, and nothing else (gunicorn, Celery, the tests)
reads it, so a production deployment configured by its environment never does.

Runs without Django: ``python -m licensing_portal.embedded --port 8000 --mail var/mail``.
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


def write(*, site_url: str, mail_dir: str) -> Path:
    path = env_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `make run`: the embedded default, for commands run by hand with\n"
        "# manage.py. Variables set in the environment take precedence. Not for production.\n"
        "DJANGO_DEBUG=1\n"
        f"SITE_URL={site_url}\n"
        f"EMAIL_FILE_PATH={mail_dir}\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-url", required=True)
    parser.add_argument("--mail", required=True)
    args = parser.parse_args()
    write(site_url=args.site_url.rstrip("/"), mail_dir=str(Path(args.mail).resolve()))


if __name__ == "__main__":
    main()
