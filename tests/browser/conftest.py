"""Browser journeys run against the product as it is deployed: gunicorn serving the project
with production settings (DJANGO_DEBUG off, the security middleware and CSP on), only the
HTTPS-only settings relaxed because the test talks plain HTTP on loopback.

Each test gets its own copy of a database that was migrated and loaded with the demo data once
per session (an SQLite file copy, or a PostgreSQL database made from a template when
DATABASE_URL names PostgreSQL, as in CI), its own mail folder and its own gunicorn on a free
port. E-mails are read from that folder and their links opened in fresh browser contexts, as
a person coming from a mail client would.

Fixtures:
- ``site``: a running ``Site``: ``url``, ``mails()``, ``manage(...)``, ``shell(code)``,
  ``agent(...)``.
- ``browser``: Debian's Chromium driven by Playwright.
- ``new_page(width=1280, height=900)``: a page in a fresh context that records script errors.
- ``artifacts``: the folder screenshots go to (``test-artifacts/`` or $TEST_ARTIFACTS).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo1234"  # licensing_portal/management/commands/demo_data.py
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _production_env(var_dir: Path, database_url: str, port: int) -> dict[str, str]:
    """The environment of a production deployment, HTTPS-only settings relaxed for loopback."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        DJANGO_SETTINGS_MODULE="licensing_portal.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="browser-journeys-secret-key-" + "x" * 40,
        SECRET_HASH_KEY="browser-journeys-hash-key",
        LICENSE_KEY_PASSPHRASE="browser-journeys-key-passphrase",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_HSTS_SECONDS="0",
        SITE_URL=f"http://127.0.0.1:{port}",
        VAR_DIR=str(var_dir),
        EMAIL_FILE_PATH=str(var_dir / "mail"),
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
    )
    return env


def _manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def _postgres_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _psql(admin_url: str, sql: str) -> None:
    import psycopg

    parts = urlsplit(admin_url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Template:
    """A database migrated and loaded with the demo data, copied for each test."""

    var_dir: Path
    sqlite_file: Path | None = None
    pg_name: str | None = None


@pytest.fixture(scope="session")
def site_template(tmp_path_factory) -> Iterator[Template]:
    var_dir = tmp_path_factory.mktemp("browser-template")
    admin_url = _postgres_admin_url()
    if admin_url:
        name = f"clp_browser_tpl_{os.getpid()}"
        _psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _psql(admin_url, f'CREATE DATABASE "{name}"')
        database_url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
        template = Template(var_dir=var_dir, pg_name=name)
    else:
        database_url = f"sqlite:///{var_dir / 'db.sqlite3'}"
        template = Template(var_dir=var_dir, sqlite_file=var_dir / "db.sqlite3")
    env = _production_env(var_dir, database_url, 8000)
    _manage(env, "migrate", "--noinput")
    _manage(env, "createcachetable")
    _manage(env, "create_root_key", "--if-missing")
    _manage(env, "demo_data")
    try:
        yield template
    finally:
        if admin_url and template.pg_name:
            _psql(admin_url, f'DROP DATABASE IF EXISTS "{template.pg_name}" WITH (FORCE)')


@dataclass
class Site:
    url: str
    env: dict[str, str]
    var_dir: Path
    mail_dir: Path
    log: Path
    access_log: Path
    _seen: set[str] = field(default_factory=set)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs a management command against this site's database and settings."""
        return _manage(self.env, *args, check=check)

    def shell(self, code: str) -> str:
        """Runs Python with Django set up against this site's database; returns its stdout."""
        return self.manage("shell", "--no-imports", "-c", code).stdout.strip()

    def root_public_key(self) -> str:
        return self.manage("root_public_key").stdout.strip()

    def agent(
        self, *args: str, check: bool = True, state: str = "agent"
    ) -> subprocess.CompletedProcess:
        """Runs the reference AppSuite agent (``appsuite-agent``) with its state in var/<state>,
        trusting this site's root (APPSUITE_ROOT_KEY), over loopback http (--insecure-dev)."""
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "appsuite_agent",
                "--insecure-dev",
                "--state-dir",
                str(self.var_dir / state),
                *args,
            ],
            cwd=REPO_ROOT,
            env={**self.env, "APPSUITE_ROOT_KEY": self.root_public_key()},
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def mails(self) -> list[EmailMessage]:
        """Every e-mail written so far, oldest first."""
        files = sorted(self.mail_dir.glob("*.log"), key=lambda p: (p.stat().st_mtime, p.name))
        messages: list[EmailMessage] = []
        for path in files:
            # The file backend writes one or more messages per file, each followed by a line
            # of 79 dashes.
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    messages.append(
                        email.message_from_bytes(chunk.lstrip(), policy=email.policy.default)
                    )
        return messages

    def new_mails(self) -> list[EmailMessage]:
        """E-mails written since the last call (by Message-ID)."""
        fresh = []
        for message in self.mails():
            key = str(message["Message-ID"])
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(message)
        return fresh

    def wait_for_mail(
        self, predicate: Callable[[EmailMessage], bool], timeout: float = 15
    ) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.mails():
                if predicate(message):
                    return message
            if time.monotonic() > deadline:
                subjects = [str(m["Subject"]) for m in self.mails()]
                raise AssertionError(f"no such e-mail; sent so far: {subjects}")
            time.sleep(0.2)


def mail_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def links_in(message: EmailMessage) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>]+", mail_text(message))


@pytest.fixture
def site(site_template: Template, tmp_path: Path) -> Iterator[Site]:
    port = _free_port()
    var_dir = tmp_path / "var"
    (var_dir / "mail").mkdir(parents=True)
    admin_url = _postgres_admin_url()
    pg_name = None
    if site_template.pg_name and admin_url:
        pg_name = f"clp_browser_{os.getpid()}_{port}"
        _psql(admin_url, f'CREATE DATABASE "{pg_name}" TEMPLATE "{site_template.pg_name}"')
        database_url = urlsplit(admin_url)._replace(path=f"/{pg_name}").geturl()
    else:
        assert site_template.sqlite_file is not None
        shutil.copy(site_template.sqlite_file, var_dir / "db.sqlite3")
        database_url = f"sqlite:///{var_dir / 'db.sqlite3'}"
    # The signing keys and anything else the template made under its var/ come along.
    for item in site_template.var_dir.iterdir():
        if item.name not in {"db.sqlite3", "mail"} and not (var_dir / item.name).exists():
            (shutil.copytree if item.is_dir() else shutil.copy)(item, var_dir / item.name)
    env = _production_env(var_dir, database_url, port)
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "licensing_portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            str(tmp_path / "access.log"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
        time.sleep(0.2)
    try:
        yield Site(
            url=url,
            env=env,
            var_dir=var_dir,
            mail_dir=var_dir / "mail",
            log=log,
            access_log=tmp_path / "access.log",
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if pg_name and admin_url:
            _psql(admin_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop running in this thread; Django's ORM refuses
    # to run from such a thread unless told it is fine.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser) -> Callable[..., object]:
    contexts = []

    def make(width: int = 1280, height: int = 900):
        """A page in a fresh context (no cookies, as a mail client opening a link)."""
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page, base_url: str, email_address: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("E-mail").fill(email_address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page) -> None:
    page.locator("header details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()
