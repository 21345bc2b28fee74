"""Every command the README and the documents it sends a reader to (the agent's walk-through,
operations) show works as written, the way a developer meets them: in a copy of the repository
with no settings in the environment, `make run` serving, then each fenced `sh` block of the
README and then of those documents run in order in one shell (so `KEY=...` carries over), and
each inline `.venv/bin/python manage.py ...` command.

Only the port differs: the README's 127.0.0.1:8000 becomes a free port (`PORT=... make run`,
which the README documents). What the walk-through asks the reader to copy from the portal
(`TOKEN`, `OFFLINE_TOKEN`, `OFFLINE_SERVER`) the test takes from the services the portal
calls. `make run` and `make test` are not run again inside the suite (the first is already
serving; the second is the suite itself)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
# Read in this order, as the README sends the reader on: the agent's walk-through uses its KEY.
DOCUMENTS = (README, REPO_ROOT / "docs" / "agent.md", REPO_ROOT / "docs" / "operations.md")


def documents_text() -> str:
    return "\n".join(document.read_text() for document in DOCUMENTS)


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def readme_inline_commands(text: str) -> list[str]:
    return sorted(set(re.findall(r"`(\.venv/bin/python manage\.py [^`]+)`", text)))


def _is_suite_itself(line: str) -> bool:
    command = line.split("#", 1)[0]
    return bool(re.search(r"\bmake (run|test)\b", command))


def runnable_script(block: str, port: int) -> str:
    lines = []
    for line in block.replace("\\\n", " ").splitlines():
        if not line.strip() or _is_suite_itself(line):
            continue
        lines.append(line.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    return "\n".join(lines)


def test_the_readme_shows_its_commands_in_sh_blocks():
    readme = "\n".join(readme_blocks(README.read_text()))
    for expected in ("make run", "make test", "make api-key", "curl", "make daily"):
        assert expected in readme, expected
    agent = "\n".join(readme_blocks((REPO_ROOT / "docs" / "agent.md").read_text()))
    assert "appsuite-agent" in agent and "offline-activation" in agent
    inline = readme_inline_commands(documents_text())
    for expected in ("demo_data", "root_public_key", "rotate_signing_key"):
        assert any(expected in command for command in inline), expected


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's files as a fresh clone has them, sharing this run's virtualenv."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    root = tmp_path / "clone"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    venv = Path(sys.prefix)
    stamp = venv / ".installed"
    if not stamp.exists():
        # Without make's stamp, `make run` would reinstall this virtualenv from the copy.
        pytest.skip("run through `make test`: the virtualenv has no install stamp")
    (root / ".venv").symlink_to(venv, target_is_directory=True)
    # make's install stamp must stay newer than what it installs from, as after `make install`.
    for name in ("pyproject.toml", "requirements-dev.lock"):
        os.utime(root / name, (stamp.stat().st_mtime - 1,) * 2)
    return root


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
    return {k: os.environ[k] for k in keep if k in os.environ}


@contextmanager
def make_run(checkout: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """`make run` serving on `port` for the block; yields its base URL. Its output goes to a
    file beside the checkout (a pipe nobody reads can stall a chatty server) and is shown when
    it does not come up."""
    log = checkout.parent / f"make-run-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=checkout,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text(errors="replace")
                    pytest.fail(f"make run did not serve:\n{output[-4000:]}")
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: stop it the hard way
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def test_every_readme_command_works_as_written_after_make_run(checkout: Path):
    port = _free_port()
    env = _clean_env()
    with make_run(checkout, port, env):
        # What the reader copies from the portal: tokens of two servers of Demo Customer.
        copied = subprocess.run(
            [".venv/bin/python", "manage.py", "shell", "--no-imports", "-c", PORTAL_STEPS],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        token, offline_token, offline_server = copied[-3:]
        assert token.startswith("act_") and offline_token.startswith("act_")

        text = documents_text()
        script = "\n".join(
            ["set -euo pipefail"] + [runnable_script(block, port) for block in readme_blocks(text)]
        )
        script += "\n" + "\n".join(readme_inline_commands(text))
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=checkout,
            env={
                **env,
                "TOKEN": token,
                "OFFLINE_TOKEN": offline_token,
                "OFFLINE_SERVER": offline_server,
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

        out = result.stdout
        assert '"reference":"PO-42"' in out.replace(" ", "")  # the order was placed
        assert "Renewed" in out  # make daily ran the jobs
        mails = list((checkout / "var" / "mail").glob("*.log"))
        links = {m for f in mails for m in re.findall(r"http://127\.0\.0\.1:\d+", f.read_text())}
        assert links == {f"http://127.0.0.1:{port}"}, links
        assert (checkout / "var" / "license.json").read_text().startswith('{"license"')


# Run in the checkout through manage.py shell: what a reseller does on the server pages
# before the agent's walk-through (give capacity, copy the token shown).
PORTAL_STEPS = """
from smartaccounts.actors import Actor
from smartaccounts.models import Product, SmartAccount
from tokens import services
from tokens.models import Server

actor = Actor.system("README reader")
account = SmartAccount.objects.get(name="Demo Customer")
recording = Product.objects.get(code="CALL_RECORDING")
rome = Server.objects.get(account=account, name="PBX-Rome-test")
online = services.assign_capacity(server=rome, product=recording, quantity=2, actor=actor).token
lab = services.create_server(account=account, name="PBX-Lab-offline", purpose="test", actor=actor)
offline = services.assign_capacity(server=lab, product=recording, quantity=1, actor=actor).token
print(online.raw, offline.raw, lab.pk)
"""


def test_make_run_with_production_settings_serves_and_shares_its_keys(checkout: Path):
    """The README's recipe: debug off and a secret key given to `make run`; pages carry the
    production headers, static files are served, and a key made by hand with manage.py works
    against the server (the same SECRET_HASH_KEY)."""
    port = _free_port()
    env = {
        **_clean_env(),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "readme-production-trial-" + "k" * 40,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
    }
    with make_run(checkout, port, env) as base:
        with urllib.request.urlopen(f"{base}/login/", timeout=5) as login:
            page = login.read().decode()
            assert "default-src 'self'" in login.headers["Content-Security-Policy"]
        css = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
        with urllib.request.urlopen(base + css, timeout=5) as sheet:
            assert sheet.status == 200

        by_hand = {k: v for k, v in _clean_env().items()}  # a new terminal: nothing exported
        key = (
            subprocess.run(
                [".venv/bin/python", "manage.py", "create_api_key", "--org", "Demo Reseller"],
                cwd=checkout,
                env=by_hand,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        request = urllib.request.Request(
            f"{base}/api/v1/orders", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        assert oct((checkout / "var" / "embedded.env").stat().st_mode)[-3:] == "600"
